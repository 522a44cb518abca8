"""A Django-free client for the VIPTel hosted PBX REST API, its request budget and a simulator.

Import what you need from the modules: ``pbxapi.client`` (PBXClient, client_from_env),
``pbxapi.budget`` (RedisBudget, LocalBudget), ``pbxapi.models``, ``pbxapi.errors``.
"""
