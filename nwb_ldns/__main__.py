"""`python -m nwb_ldns ...`: the same command as `nwb-ldns ...` (for `torchrun -m`, clusters and venvs without
the console script on PATH)."""

from nwb_ldns.cli.main import cli

if __name__ == "__main__":
    cli(prog_name="nwb-ldns")
