"""A stand-in for BQSKit in the tests (BQSKit cannot be installed here): the
modules and names qlaunch.bqskit and BQSKit passes use, written from BQSKit's
documentation. Set QLAUNCH_BQSKIT_SRC to a BQSKit source tree to test the
bridge against BQSKit's own runtime modules instead."""
