"""Mailshift's service: the cmdlet registry and its REST, WinRM and PSRP doors (next milestone)."""
