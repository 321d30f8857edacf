"""`python -m mixopt`: the same command line as `mixopt`."""

from mixopt.cli import app

if __name__ == "__main__":
    app(prog_name="mixopt")
