"""Variants of the product's ASGI application for benchmark experiments (never used in production).

Each module patches one thing and exposes `application`, so that `bench/fanout.py
--wallboard-asgi MODULE:application` can show what a proposed change would buy.
"""
