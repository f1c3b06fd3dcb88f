from infrastructure.testing.children import children  # noqa: F401 - a fixture for the tests here
