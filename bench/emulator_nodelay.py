"""The emulator command line with TCP_NODELAY on every accepted connection.

`python -m bench.emulator_nodelay` takes the same options as `python -m crm_assets.emulator`.
The stock emulator writes the headers and the body of a response in two writes with
Nagle's algorithm on, so on loopback the body waits for the client's delayed ACK of the
headers (about 40 ms on Linux) on every page. This launcher exists to measure the
emulator without that wait; `bench.run --emulator-nodelay` uses it.
"""

import sys

from crm_assets.emulator.__main__ import main
from crm_assets.emulator.handler import CrmRequestHandler

# socketserver.StreamRequestHandler.setup() sets TCP_NODELAY on each connection when true.
CrmRequestHandler.disable_nagle_algorithm = True

if __name__ == "__main__":
    sys.exit(main())
