"""The command line: ``python -m control.cli``, a client of the HTTP API (click and httpx).

It is a package of ``control`` run with ``-m`` rather than a console script, so it works right
after ``pip install -r requirements.txt``, with no packaging or install step. It talks to the
service only over HTTP, with the same tokens as any other client: it imports nothing else of
``control`` (being in the package, it does run ``control/__init__``, which only installs the
pydantic bridge's import hook) and needs only that the service answers.
"""
