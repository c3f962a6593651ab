"""Plain-Python core: no Qt imports anywhere below this package (a test enforces it)."""
