"""Face matching: decode, detect, quality, liveness, embed and match faces on the CPU.

The public API is `services.facematch.api.FaceEngine`; everything else is pure helpers and
ports. No module here imports nameko, psycopg or kombu.
"""
