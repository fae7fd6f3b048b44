"""The terminal simulator (``aid sim``) and its HTTP client of the services (:mod:`simulator.client`)."""
