"""Tasks the tests drive: each runs only when asked, except the pipeline's first step."""
