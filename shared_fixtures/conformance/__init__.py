"""The conformance suite: the contract checked against any app at any base URL."""
