"""Dev tools that run the product on this machine: ``make demo`` and the tests' real chain.

Not part of what a deployment runs: nothing below the dev tools (see
tests/architecture/test_layers.py) imports this package.
"""
