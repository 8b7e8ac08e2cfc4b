"""Start the govrag chat app on the shipped corpus: `python app.py [--host H] [--port N]`.

Same as `rag serve`; builds the index from corpus/ on first run.
"""

from rag.app.cli import main

if __name__ == "__main__":
    import sys

    main(["serve", *sys.argv[1:]])
