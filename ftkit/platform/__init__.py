"""ftkit's platform layer: what every other module stands on and nothing of fine-tuning — one-line errors
(``errors``), profiles (``profiles``), device, precision, seeds and memory (``runtime``), converted models on
disk (``cache``), where packages and runs are (``paths``), checked parameters (``params``), and atomic
checkpoints with the exact resume of a training run (``checkpoint``). It imports nothing of ``engine`` or
``lessons``."""
