"""``python -m momentum_ops``, the same as ``momentum-ops``."""

from momentum_ops.cli import main

main()
