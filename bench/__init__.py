"""The Shillings benchmark: `make bench` (bench/run.sh) runs ``python -m bench``."""
