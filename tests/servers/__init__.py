"""Throwaway real servers for integration tests and the benchmark.

Dovecot instances (``dovecot``), mailbox fillers and readers (``mailbox``), and a
fault-injecting TCP proxy (``proxy``).
"""
