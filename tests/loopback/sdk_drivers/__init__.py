"""Scripts run by the OFFICIAL AssemblyAI SDKs in their own virtualenvs (tests/loopback/test_sdk_conformance.py).

They import only the SDK and the standard library (the SDK venvs have nothing else) and print
one JSON object per line for every callback, so the test can compare what the SDK saw with
what the loopback server recorded.
"""
