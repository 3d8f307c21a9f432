"""Dispatch ``python -m dldiag.bench NAME [ARGS]`` to ``dldiag.bench.NAME.main(ARGS)``."""

import importlib
import sys

SUITES = ("core", "samplers", "app", "concurrency", "browser", "load", "firstview", "cachecap", "streaming",
          "galaxies", "scale", "density", "projection", "fits")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUITES:
        print(f"usage: python -m dldiag.bench {{{','.join(SUITES)}}} [--write] ...", file=sys.stderr)
        return 2
    module = importlib.import_module(f"dldiag.bench.{argv[0]}")
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
