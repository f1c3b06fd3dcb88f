import uuid

import pytest

from chat_query.store import ReadStore, activate
from infrastructure import backends
from infrastructure.testing.children import children  # noqa: F401 - a fixture for the tests here


@pytest.fixture(autouse=True)
def read_store_generation_of_its_own():
    """Every test reads and projects into collections of its own (the seeded ids repeat)."""
    generation = f"t{uuid.uuid4().hex[:10]}"
    activate(generation)
    ReadStore(backends.mongo_db(), generation).ensure_indexes()
    yield generation
    ReadStore(backends.mongo_db(), generation).drop()
    activate("")
