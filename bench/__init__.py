"""The throughput benchmark (``make bench`` runs ``python -m bench.run``); see ``bench/README.md``.

``bench.corpus`` writes a seeded, realistic corpus straight into a source Dovecot's Maildirs,
``bench.probe`` measures what the servers allow with a minimal raw IMAP client, and
``bench.run`` times ``mailshift sync`` against that limit and checks the copies.
"""
