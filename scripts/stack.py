#!/usr/bin/env python3
"""Run the whole Shillings stack under one supervisord: the command line of
``shillings_stack.cli`` (``stack.py --help``), used by the Makefile, the image and compose."""

import sys

from shillings_stack.cli import main

if __name__ == "__main__":
    sys.exit(main())
