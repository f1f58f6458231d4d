"""A private Postfix instance for tests: its own config, queue and data folders, loopback ports.

Started with `postfix -c FOLDER start` as root (the daemons run as the
`postfix` user the Debian package creates); no system service or file is
touched, and stop() ends it. main.cf and master.cf are written whole: the
test-only settings here (folders, ports, short retry times, no DNS, every
service unchrooted, a relayhost standing in for the participants' providers)
plus, verbatim, the blocks `relay setup postfix` prints.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from relay.ops import postfix as snippets_module

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
POSTQUEUE = shutil.which("postqueue") or "/usr/sbin/postqueue"
MX_HOSTNAME = "mx.relay.test"

# Debian's default services, unchrooted (a chroot would need copies of /etc files).
BASE_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass
class PostfixInstance:
    """One running Postfix: mx_port is its MX listener, the rest comes from setup output."""

    folder: Path
    mx_port: int
    sink_port: int
    setup_output: str
    extra_main_cf: str = ""
    started: bool = field(default=False, init=False)

    @property
    def log_file(self) -> Path:
        return self.folder / "maillog"

    def write_config(self) -> None:
        blocks = snippets_module.parse(self.setup_output)
        main_block = blocks[f"{self.folder}/main.cf"]
        master_block = blocks[f"{self.folder}/master.cf"]
        for name, text in blocks.items():  # the maps
            if name.startswith("/") and not name.endswith(".cf"):
                Path(name).write_text(text)
        (self.folder / "main.cf").write_text(self._test_main_cf() + main_block + self.extra_main_cf)
        (self.folder / "master.cf").write_text(
            BASE_SERVICES
            + "# The MX (port 25 in production): the test's clients connect here.\n"
            + f"127.0.0.1:{self.mx_port} inet  n       -       n       -       -       smtpd\n"
            + master_block
        )

    def _test_main_cf(self) -> str:
        folder = self.folder
        return f"""\
# ---- test-only settings: folders, loopback, no DNS, quick retries ----
compatibility_level = 3.6
queue_directory = {folder}/queue
data_directory = {folder}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = {MX_HOSTNAME}
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# The participants' providers: every domain but the relay's goes to the test's sink.
relayhost = [127.0.0.1]:{self.sink_port}
smtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file = {folder}/maillog
maillog_file_prefixes = {folder}
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = 0
notify_classes =
biff = no
# ---- from `relay setup postfix` ----
"""

    def start(self) -> None:
        for sub in ("queue", "data"):
            (self.folder / sub).mkdir(exist_ok=True)
        owner = pwd.getpwnam("postfix")
        os.chown(self.folder / "data", owner.pw_uid, owner.pw_gid)
        os.chmod(self.folder, 0o755)  # the postfix user reads its maps here
        self.write_config()
        self._postfix("start")
        self.started = True

    def stop(self) -> None:
        if self.started:
            self._postfix("stop")
            self.started = False

    def flush(self) -> None:
        """Retry the deferred mail now (`postqueue -f`)."""
        subprocess.run([POSTQUEUE, "-c", str(self.folder), "-f"], check=True, timeout=30)

    def queue(self) -> str:
        return subprocess.run(
            [POSTQUEUE, "-c", str(self.folder), "-p"],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in (found := self.log()):
                return found
            time.sleep(0.05)
        raise AssertionError(f"Postfix never logged {text!r}; its log:\n{self.log()}")

    def _postfix(self, command: str) -> None:
        result = subprocess.run(
            [POSTFIX, "-c", str(self.folder), command],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"postfix {command} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                f"\n{self.log()}"
            )


def make_folder() -> Path:
    # Under /tmp, not pytest's 0700 tmp folder: the postfix user must read it.
    return Path(tempfile.mkdtemp(prefix="relay-postfix-"))
