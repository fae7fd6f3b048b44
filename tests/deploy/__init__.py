"""Deployment tests: Prometheus config and alert rules, docker-compose.yml, deploy/Dockerfile,
and a helper (prom.py) that runs a real Prometheus for other tests."""
