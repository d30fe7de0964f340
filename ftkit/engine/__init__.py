"""ftkit's engine: the training machinery every lesson uses — data (``data``, ``sources``), models
(``models``), metrics (``metrics``), losses (``losses``), the training loop (``train``, with ``buckets``,
``packing`` and ``dropout`` for speed, ``schedules`` for the learning rate), decoding (``generate``), a
labelled task for a causal LM (``lm``), and a notebook run's bookkeeping (``experiment``, ``sweep``,
``report``). It imports from ``platform`` only, never from ``lessons``."""
