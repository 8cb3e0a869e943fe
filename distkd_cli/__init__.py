"""The command-line layer of ``tools/*.py`` and the launchers (not part of the library ``distkd``):
``args`` (argparse with one-line errors and the closest names), ``config`` (the options both trainers
share, ``-c`` YAML files and the ``kd`` options), ``run`` (the entry-point wrapper:
one line and an exit code per outcome, a bounded exit), ``launch`` (torchrun printing a failure
once), ``progress`` (throughput and time left in the trainers' log lines), ``callbacks`` (the
training loops' extension point, installed from the environment), and what the tasks and the
reproduction tools share: ``download`` (verified downloads), ``recipes`` (the paper's classification
recipes) and ``measure`` (the benchmarks' machine header and peak memory)."""
