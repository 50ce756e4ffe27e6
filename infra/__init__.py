"""The only package that wires everything together: the embedded stack (SeaweedFS, the
development PKI with its TSA/OCSP service, a Prefect server), the command line, the demo, the
synthetic sample data and the settings as a whole. Nothing below imports it."""
