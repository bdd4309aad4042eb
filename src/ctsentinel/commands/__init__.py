"""One module per CLI verb: it takes the parsed arguments, calls the layers below, prints, and returns the
exit status. Nothing here parses arguments (cli.py does) and nothing below here prints.

Every verb has the same shape: a module `ctsentinel.commands.<verb>` with

    def run(args: argparse.Namespace) -> int

and a parser in cli.py that ends with `set_defaults(verb="<verb>")`. That is all it takes to add one.
"""
