from backbone.eventstore import InMemoryEventStore
from tests.eventstore_contract import EventStoreContract


class TestInMemoryEventStore(EventStoreContract):
    def setup_method(self) -> None:
        self.store = InMemoryEventStore()
