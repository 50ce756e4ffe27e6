"""The write path of the archive, one subpackage per stage, in the order data flows:

``sources`` → ``render`` → ``sign`` → ``seal`` → ``store`` → ``catalog``, with ``audit`` beside
them, ``pipeline`` driving one run through all of them and ``core`` (settings, errors, atomic
writes, time zones, pools) underneath. ``wiring`` opens the real implementations from settings.
Imports no other package of this project.
"""
