"""irctest controller for libactor's chat-server (examples/chat).

irctest, the IRC server conformance suite, starts the server under test through a controller
module given to pytest as ``--controller``. This one writes a chat-server configuration file
for the address, port and password that a test asks for, with the operator that irctest's OPER
tests log in as (``OPER operuser operpassword``), and starts ``$CHAT_SERVER --config FILE``
(``CHAT_SERVER`` defaults to ``chat-server`` on the PATH). ``make irctest`` runs it; see
``tests/irctest/run.sh``.

What chat-server does not have (TLS, WebSocket, services) is reported as
NotImplementedByController, which irctest counts as a skip.
"""

import ctypes
import os
import shutil
import signal
from typing import Optional, Set, Type

from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController
from irctest.specifications import Capabilities

TEMPLATE_CONFIG = """\
[server]
bind = {hostname}
port = {port}
workers = {workers}
name = My.Little.Server
{password_field}
oper = operuser:operpassword

[limits]
# irctest sends many lines at once; flood control would only slow it down.
flood-rate = 0
"""


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when irctest goes, even if it is killed."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ChatServerController(BaseServerController, DirectoryBasedController):
    software_name = "libactor chat-server"
    supported_sasl_mechanisms: Set[str] = set()
    supports_sts = False

    # The capabilities chat-server offers in CAP LS: a test that finds one refused fails
    # rather than skips.
    capabilities = frozenset(
        {
            Capabilities.AWAY_NOTIFY,
            Capabilities.BATCH,
            Capabilities.ECHO_MESSAGE,
            Capabilities.EXTENDED_JOIN,
            Capabilities.LABELED_RESPONSE,
            Capabilities.MESSAGE_TAGS,
            Capabilities.MULTI_PREFIX,
            Capabilities.SERVER_TIME,
            Capabilities.SETNAME,
        }
    )

    # ISUPPORT tokens chat-server announces, for isupport.py's testValues.
    isupport = {
        "CASEMAPPING": "rfc1459",
        "CHANTYPES": "#",
    }

    def create_config(self) -> None:
        super().create_config()
        with self.open_file("server.conf"):
            pass

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str],
        websocket_port: Optional[int],
    ) -> None:
        if ssl:
            raise NotImplementedByController("TLS")
        if websocket_hostname is not None or websocket_port is not None:
            raise NotImplementedByController("Websocket")
        if run_services:
            raise NotImplementedByController("Services")
        assert self.proc is None
        self.port = port
        self.hostname = hostname
        self.create_config()
        assert self.directory

        password_field = "password = {}".format(password) if password else ""
        with self.open_file("server.conf") as fd:
            fd.write(
                TEMPLATE_CONFIG.format(
                    hostname=hostname,
                    port=port,
                    workers=os.environ.get("CHAT_SERVER_WORKERS", "0"),
                    password_field=password_field,
                )
            )

        if faketime and shutil.which("faketime"):
            faketime_cmd = ["faketime", "-f", faketime]
            self.faketime_enabled = True
        else:
            faketime_cmd = []

        self.proc = self.execute(
            [
                *faketime_cmd,
                os.environ.get("CHAT_SERVER", "chat-server"),
                "--config",
                self.directory / "server.conf",
            ],
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def get_irctest_controller_class() -> Type[ChatServerController]:
    return ChatServerController
