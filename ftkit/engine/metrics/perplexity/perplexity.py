"""Perplexity from negative log-likelihoods that were already computed (no model is run here).

Each example is one sequence: its summed negative log-likelihood (natural log) and the number of
tokens that were scored. Perplexity = exp(total nll / total tokens), so long sequences weigh more.
"""

import datasets
import evaluate
import numpy as np

_INPUTS = """
nll (list of float): summed negative log-likelihood of each sequence, natural log.
n_tokens (list of int): number of tokens scored in each sequence.
Returns: {"perplexity": float, "mean_nll": float, "n_tokens": int}
"""


class Perplexity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Perplexity exp(sum nll / sum tokens) from per-sequence summed negative log-likelihoods.",
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({"nll": datasets.Value("float64"), "n_tokens": datasets.Value("int64")}),
        )

    def _compute(self, nll, n_tokens):
        total = int(np.sum(n_tokens, dtype=np.int64))
        if total <= 0:
            raise ValueError(f"perplexity needs at least one scored token, got a total of {total} tokens")
        mean_nll = float(np.sum(nll, dtype=np.float64)) / total
        return {"perplexity": float(np.exp(mean_nll)), "mean_nll": mean_nll, "n_tokens": total}
