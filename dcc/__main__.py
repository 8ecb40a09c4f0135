"""`python -m dcc` runs the command line."""

from dcc.cli import main

if __name__ == "__main__":
    main()
