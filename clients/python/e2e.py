#!/usr/bin/env python3
"""End-to-end test of the `entitlements` gRPC service, as an independent client.

It knows only shared/DOMAIN.md and proto/entitlement/v1/*.proto: it generates
Python stubs from the protos, starts `entitlements serve --dev` on a free port
with a fresh data dir, mints tokens with `entitlements dev-token`, reads the
emails the service writes as .eml files, and drives the whole access flow.

Exit status: 0 when every check holds, 1 when any check failed, 2 when the
harness itself could not run (stubs, server start).
"""

from __future__ import annotations

import argparse
import datetime as dt
import email
import email.policy
import email.utils
import glob
import importlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import grpc
from grpc_status import rpc_status
from google.rpc import error_details_pb2
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

# grpcio-reflection ships Python stubs only for v1alpha; grpc.reflection.v1 has
# the very same messages (only the package differs), so we use the v1alpha
# message classes with the v1 method path.
from grpc_reflection.v1alpha import reflection_pb2

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ICN = "1234567"
COUNTRY = "US"
RPC_TIMEOUT = 15.0


# --------------------------------------------------------------------------- #
# Reporting
# --------------------------------------------------------------------------- #
class Report:
    def __init__(self, verbose: bool = False) -> None:
        self.passed = 0
        self.failures: list[str] = []
        self.warnings: list[str] = []
        self.step_name = ""
        self.verbose = verbose

    def step(self, name: str) -> None:
        self.step_name = name
        print(f"\n== {name}", flush=True)

    def check(self, cond: bool, what: str, detail: str = "") -> bool:
        if cond:
            self.passed += 1
            if self.verbose:
                print(f"   ok   {what}", flush=True)
        else:
            msg = f"[{self.step_name}] {what}" + (f" -- {detail}" if detail else "")
            self.failures.append(msg)
            print(f"   FAIL {what}" + (f" -- {detail}" if detail else ""), flush=True)
        return cond

    def warn(self, what: str) -> None:
        self.warnings.append(f"[{self.step_name}] {what}")
        print(f"   warn {what}", flush=True)

    def info(self, text: str) -> None:
        print(f"   {text}", flush=True)


R = Report()


class StepAbort(Exception):
    """Raised when a step cannot continue (its own failure is already recorded)."""


def require(cond: bool, what: str, detail: str = "") -> None:
    if not R.check(cond, what, detail):
        raise StepAbort(what)


# --------------------------------------------------------------------------- #
# Stubs
# --------------------------------------------------------------------------- #
def generate_stubs(out_dir: str) -> None:
    import grpc_tools

    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    proto_root = os.path.join(REPO_ROOT, "proto")
    protos = sorted(glob.glob(os.path.join(proto_root, "entitlement", "v1", "*.proto")))
    if not protos:
        raise RuntimeError(f"no .proto files under {proto_root}/entitlement/v1")
    cmd = [
        sys.executable, "-m", "grpc_tools.protoc",
        f"-I{proto_root}", f"-I{wkt}",
        f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
        *protos,
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"protoc failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    sys.path.insert(0, out_dir)


# --------------------------------------------------------------------------- #
# Server process and tokens
# --------------------------------------------------------------------------- #
def clean_env() -> dict[str, str]:
    """The environment without ENTITLEMENTS_* so the flags we pass are the whole config."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ENTITLEMENTS_")}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary: str, data_dir: str) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.log_path = os.path.join(data_dir, "server.log")
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self) -> None:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--dev", "--listen", self.addr, "--data-dir", self.data_dir],
            stdout=self._log, stderr=subprocess.STDOUT, env=clean_env(),
        )

    def log_text(self) -> str:
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_serving(self, channel: grpc.Channel, deadline_s: float) -> None:
        stub = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + deadline_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited early with {self.proc.returncode}; log:\n{self.log_text()[-4000:]}")
            try:
                resp = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = f"status {health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)}"
            except grpc.RpcError as e:
                # Not up yet, or up but not SERVING: keep polling until the deadline.
                last = f"{e.code().name}: {e.details()}"
            time.sleep(0.1)  # poll interval, not synchronisation
        raise RuntimeError(f"health check not SERVING within {deadline_s}s (last: {last}); log:\n"
                           f"{self.log_text()[-4000:]}")

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM, then wait; returns the exit code, or None when it had to be killed."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        if self._log:
            self._log.close()
        return self.proc.returncode


def mint(binary: str, data_dir: str, sub: str, email_addr: str | None = None,
         given: str | None = None, family: str | None = None,
         scopes: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> str:
    cmd = [binary, "dev-token", "--data-dir", data_dir, "--sub", sub]
    if email_addr:
        cmd += ["--email", email_addr]
    if given:
        cmd += ["--given-name", given]
    if family:
        cmd += ["--family-name", family]
    for s in scopes:
        cmd += ["--scope", s]
    cmd += list(extra)
    res = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), timeout=60)
    if res.returncode != 0:
        raise RuntimeError(f"dev-token failed ({res.returncode}): {res.stderr.strip()}")
    tok = res.stdout.strip().splitlines()[-1].strip() if res.stdout.strip() else ""
    if tok.count(".") != 2:
        raise RuntimeError(f"dev-token did not print a JWT: {res.stdout!r}")
    return tok


# --------------------------------------------------------------------------- #
# Mail (.eml files)
# --------------------------------------------------------------------------- #
class Mailbox:
    def __init__(self, mail_dir: str) -> None:
        self.mail_dir = mail_dir

    def all(self) -> list[dict]:
        out = []
        for path in sorted(glob.glob(os.path.join(self.mail_dir, "**", "*.eml"), recursive=True)):
            try:
                with open(path, "rb") as f:
                    msg = email.message_from_bytes(f.read(), policy=email.policy.default)
            except OSError:
                continue  # being written; next poll will see it
            to = [a.lower() for _, a in email.utils.getaddresses(
                msg.get_all("To", []) + msg.get_all("Cc", []) + msg.get_all("Bcc", []))]
            out.append({"path": path, "to": to, "subject": str(msg.get("Subject", "")),
                        "body": _body_text(msg), "msg": msg})
        return out

    def paths(self) -> set[str]:
        return {m["path"] for m in self.all()}

    def wait_for(self, to: str, pred, what: str, exclude: set[str] | None = None,
                 timeout: float = 15.0) -> dict | None:
        """Polls until a message to `to` matching pred appears (email delivery is asynchronous)."""
        deadline = time.monotonic() + timeout
        exclude = exclude or set()
        while True:
            for m in self.all():
                if m["path"] in exclude or to.lower() not in m["to"]:
                    continue
                if pred(m):
                    return m
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        mine = [(os.path.basename(m["path"]), m["subject"]) for m in self.all() if to.lower() in m["to"]]
        R.check(False, f"email to {to}: {what}", f"none within {timeout}s; mails to {to}: {mine}")
        return None


def _body_text(msg) -> str:
    parts = []
    if msg.is_multipart():
        for part in msg.walk():
            if part.get_content_maintype() == "text":
                try:
                    parts.append(part.get_content())
                except Exception:  # noqa: BLE001 - odd charsets
                    parts.append(part.get_payload(decode=True).decode("utf-8", "replace"))
    else:
        try:
            parts.append(msg.get_content())
        except Exception:  # noqa: BLE001
            parts.append(str(msg.get_payload()))
    return "\n".join(p if isinstance(p, str) else p.decode("utf-8", "replace") for p in parts)


def text_of(m: dict) -> str:
    return (m["subject"] + "\n" + m["body"]).lower()


CODE_RE = re.compile(r"^[ \t]*Verification code: *(\S+)[ \t]*$", re.MULTILINE)


def verification_code(m: dict | None) -> str | None:
    if not m:
        return None
    found = CODE_RE.findall(m["body"].replace("\r\n", "\n"))
    return found[-1] if found else None


# --------------------------------------------------------------------------- #
# gRPC helpers
# --------------------------------------------------------------------------- #
def md(token: str | None):
    return [("authorization", f"Bearer {token}")] if token is not None else []


def call(fn, req, token: str | None):
    return fn(req, metadata=md(token), timeout=RPC_TIMEOUT)


def rich_error(err: grpc.RpcError):
    """(code, message, ErrorInfo|None, [BadRequest.FieldViolation])."""
    info = None
    violations = []
    try:
        st = rpc_status.from_call(err)
    except Exception as e:  # noqa: BLE001 - e.g. mismatch between status and details
        R.warn(f"could not decode grpc-status-details-bin: {e}")
        st = None
    if st is not None:
        for d in st.details:
            if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                d.Unpack(info)
            elif d.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                br = error_details_pb2.BadRequest()
                d.Unpack(br)
                violations.extend(br.field_violations)
    return err.code(), err.details() or "", info, violations


UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")
LEAK_RE = re.compile(r"(?i)(select |insert into|update .* set |sqlx|sqlite|postgres|panicked|backtrace|stack)")


def expect_error(what: str, fn, req, token, code: grpc.StatusCode | tuple,
                 field: str | None = None) -> tuple | None:
    """Calls and checks that it fails with `code` and a proper ErrorInfo. Returns rich_error()."""
    codes = code if isinstance(code, tuple) else (code,)
    try:
        resp = call(fn, req, token)
    except grpc.RpcError as err:
        got, msg, info, viol = rich_error(err)
        reason = info.reason if info else None
        R.check(got in codes, f"{what}: code {'/'.join(c.name for c in codes)}",
                f"got {got.name}: {msg!r}")
        R.check(info is not None, f"{what}: has google.rpc.ErrorInfo", f"status {got.name}: {msg!r}")
        if info is not None:
            R.check(bool(UPPER_SNAKE.match(info.reason)), f"{what}: ErrorInfo.reason is UPPER_SNAKE",
                    f"got {info.reason!r}")
        if field is not None:
            named = (field in msg) or any(v.field == field or v.field.endswith("." + field) for v in viol) \
                or (info is not None and any(field in v for v in info.metadata.values()))
            R.check(named, f"{what}: names the field {field!r}",
                    f"message {msg!r}, violations {[v.field for v in viol]}, "
                    f"metadata {dict(info.metadata) if info else {}}")
        R.check(not LEAK_RE.search(msg), f"{what}: message leaks no internals", f"message {msg!r}")
        R.info(f"{what}: {got.name} reason={reason} msg={msg!r}")
        return got, msg, info, viol
    R.check(False, f"{what}: code {'/'.join(c.name for c in codes)}", f"call succeeded: {resp}")
    return None


def ts(d: dt.datetime) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(d)
    return t


# --------------------------------------------------------------------------- #
# The flow
# --------------------------------------------------------------------------- #
class Flow:
    def __init__(self, binary: str, data_dir: str, channel: grpc.Channel, mailbox: Mailbox) -> None:
        self.bin = binary
        self.dir = data_dir
        self.ch = channel
        self.mail = mailbox
        self.types = importlib.import_module("entitlement.v1.types_pb2")
        self.acc = importlib.import_module("entitlement.v1.access_pb2")
        self.adm = importlib.import_module("entitlement.v1.account_admin_pb2")
        self.ent = importlib.import_module("entitlement.v1.entitlement_pb2")
        acc_g = importlib.import_module("entitlement.v1.access_pb2_grpc")
        adm_g = importlib.import_module("entitlement.v1.account_admin_pb2_grpc")
        ent_g = importlib.import_module("entitlement.v1.entitlement_pb2_grpc")
        self.access = acc_g.AccessServiceStub(channel)
        self.admin = adm_g.AccountAdminServiceStub(channel)
        self.checks = ent_g.EntitlementServiceStub(channel)
        self.t = self.types
        # people
        self.emails = {
            "stc1": "stc1@example.com", "ana": "ana@example.com",
            "bob": "bob@example.com", "carol": "carol@example.com",
            "mallory": "mallory@example.com", "dave": "dave@example.com",
            "erin": "erin@example.com", "frank": "frank@example.com", "gina": "gina@example.com",
        }
        self.tok: dict[str, str] = {}
        self.ana_req_id = ""
        self.bob_req_id = ""
        self.ana_code: str | None = None
        self.last_ct = ""  # latest consistency token

    # -- helpers --------------------------------------------------------------
    def role(self, v: int) -> str:
        return self.t.Role.Name(v) if v in self.t.Role.values() else str(v)

    def state(self, v: int) -> str:
        return self.t.AccessRequestState.Name(v) if v in self.t.AccessRequestState.values() else str(v)

    def reason(self, v: int) -> str:
        return self.ent.DecisionReason.Name(v) if v in self.ent.DecisionReason.values() else str(v)

    def ct(self, resp) -> None:
        tok = getattr(resp, "consistency_token", "")
        if tok:
            self.last_ct = tok

    def check_ent(self, web_id: str, action: str, product: str = "", severity: int = 0,
                  token: str | None = None, icn: str = ICN):
        req = self.ent.CheckEntitlementRequest(
            web_id=web_id, icn=icn, action=self.ent.Action.Value(action),
            product_id=product, severity=severity, consistency_token=self.last_ct)
        return call(self.checks.CheckEntitlement, req, token or self.tok["checker"])

    def expect_check(self, web_id: str, action: str, allowed: bool, reason: str,
                     role: str | None = None, product: str = "", severity: int = 0,
                     token: str | None = None, icn: str = ICN):
        what = f"Check({web_id}" + (f"@{icn}" if icn != ICN else "") + f", {action.removeprefix('ACTION_')}" + \
            (f", product={product}" if product else "") + (f", sev={severity}" if severity else "") + ")"
        try:
            r = self.check_ent(web_id, action, product, severity, token, icn)
        except grpc.RpcError as e:
            R.check(False, f"{what} answers", f"{e.code().name}: {e.details()}")
            return None
        got = f"allowed={r.allowed} reason={self.reason(r.reason)} role={self.role(r.role)}" + \
            (f" contract={r.contract_id}" if r.contract_id else "")
        R.check(r.allowed == allowed and self.reason(r.reason) == "DECISION_REASON_" + reason,
                f"{what} -> allowed={allowed} {reason}", f"got {got}")
        if role is not None:
            R.check(self.role(r.role) == role, f"{what} role {role}", f"got {got}")
        R.info(f"{what}: {got}")
        return r

    def request_access(self, who: str, role: str):
        before = self.mail.paths()
        r = call(self.access.RequestAccess, self.acc.RequestAccessRequest(
            icn=ICN, country_code=COUNTRY, requested_role=self.t.Role.Value(role)), self.tok[who])
        self.ct(r)
        return r, before

    # -- steps ----------------------------------------------------------------
    def step_tokens(self) -> None:
        R.step("mint tokens (dev-token)")
        admin, check = "entitlements.admin", "entitlements.check"
        self.tok["operator"] = mint(self.bin, self.dir, "operator1", scopes=(admin,))
        self.tok["checker"] = mint(self.bin, self.dir, "sr-tool", scopes=(check,))
        self.tok["stc1"] = mint(self.bin, self.dir, "stc1", self.emails["stc1"], "Sam", "Tech")
        self.tok["ana"] = mint(self.bin, self.dir, "ana", self.emails["ana"], "Ana", "Silva")
        self.tok["bob"] = mint(self.bin, self.dir, "bob", self.emails["bob"], "Bob", "Jones")
        self.tok["carol"] = mint(self.bin, self.dir, "carol", self.emails["carol"], "Carol", "King")
        self.tok["mallory"] = mint(self.bin, self.dir, "mallory", self.emails["mallory"], "Mal", "Lory")
        for who, (g, f) in {"dave": ("Dave", "Brown"), "erin": ("Erin", "Gray"),
                            "frank": ("Frank", "Hill"), "gina": ("Gina", "Ives")}.items():
            self.tok[who] = mint(self.bin, self.dir, who, self.emails[who], g, f)
        self.tok["wrong_aud"] = mint(self.bin, self.dir, "ana", self.emails["ana"], "Ana", "Silva",
                                     extra=("--audience", "someone-else"))
        R.check(True, "minted tokens")

    def step_operator_setup(self) -> None:
        R.step("operator: CreateAccount, UpsertSupportContract x2, AddSiteTechnicalContact")
        op = self.tok["operator"]
        r = call(self.admin.CreateAccount, self.adm.CreateAccountRequest(
            icn=ICN, company_name="Example Corp", country_code=COUNTRY), op)
        self.ct(r)
        a = r.account
        R.check(a.icn == ICN and a.country_code == COUNTRY and a.company_name == "Example Corp",
                "CreateAccount echoes icn/country/company", str(a))
        R.check(a.status == self.t.AccountStatus.Value("ACCOUNT_STATUS_ACTIVE"),
                "new account is ACTIVE", f"status={a.status}")
        R.info(f"CreateAccount: icn={a.icn} status={self.t.AccountStatus.Name(a.status)}")

        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        start, end = now - dt.timedelta(days=1), now + dt.timedelta(days=365)
        for cid, prod, x24 in (("C-DB2-24X7", "db2", True), ("C-MQ-BUS", "mq", False)):
            r = call(self.admin.UpsertSupportContract, self.adm.UpsertSupportContractRequest(
                icn=ICN, contract_id=cid, product_ids=[prod], start_time=ts(start), end_time=ts(end),
                includes_24x7=x24), op)
            self.ct(r)
            c = r.contract
            R.check(c.contract_id == cid and list(c.product_ids) == [prod] and c.includes_24x7 == x24
                    and c.icn == ICN and c.start_time.seconds == int(start.timestamp())
                    and c.end_time.seconds == int(end.timestamp()),
                    f"UpsertSupportContract {cid} echoes fields", str(c))
            R.info(f"UpsertSupportContract: {cid} products={list(c.product_ids)} 24x7={c.includes_24x7}")

        before = self.mail.paths()
        r = call(self.admin.AddSiteTechnicalContact, self.adm.AddSiteTechnicalContactRequest(
            icn=ICN, web_id="stc1", email=self.emails["stc1"], given_name="Sam", family_name="Tech"), op)
        self.ct(r)
        m = r.membership
        R.check(m.icn == ICN and m.web_id == "stc1" and self.role(m.role) == "ROLE_SITE_TECHNICAL_CONTACT"
                and m.email == self.emails["stc1"], "AddSiteTechnicalContact -> STC membership", str(m))
        R.info(f"AddSiteTechnicalContact: stc1 role={self.role(m.role)} verified={m.email_verified}")

        g = call(self.admin.GetAccount, self.adm.GetAccountRequest(icn=ICN), op)
        R.check({c.contract_id for c in g.contracts} == {"C-DB2-24X7", "C-MQ-BUS"},
                "GetAccount lists both contracts", str([c.contract_id for c in g.contracts]))
        R.check([s.web_id for s in g.site_technical_contacts] == ["stc1"],
                "GetAccount lists the STC", str([s.web_id for s in g.site_technical_contacts]))

        R.step("STC verifies their email")
        mail = self.mail.wait_for(self.emails["stc1"], lambda x: verification_code(x) is not None,
                                  "verification code after being added as STC", exclude=before)
        code = verification_code(mail)
        require(code is not None, "STC verification code found in mail")
        R.info(f"STC code from {os.path.basename(mail['path'])}: {code}")
        r = call(self.access.VerifyEmail, self.acc.VerifyEmailRequest(code=code), self.tok["stc1"])
        self.ct(r)
        R.check(r.email_verified, "VerifyEmail(stc1) -> email_verified", str(r))
        self.expect_check("stc1", "ACTION_MANAGE_USERS", True, "GRANTED", role="ROLE_SITE_TECHNICAL_CONTACT")

    def step_ana_requests(self) -> None:
        R.step("ana: RequestAccess(AUTHORIZED_USER) -> PENDING, emails")
        self.expect_check("ana", "ACTION_VIEW_SUPPORT_AREA", False, "NOT_A_MEMBER")
        r, before = self.request_access("ana", "ROLE_AUTHORIZED_USER")
        ar = r.access_request
        self.ana_req_id = ar.access_request_id
        require(bool(ar.access_request_id), "RequestAccess returns an access_request_id", str(ar))
        R.check(self.state(ar.state) == "ACCESS_REQUEST_STATE_PENDING", "ana's request is PENDING",
                self.state(ar.state))
        R.check(ar.icn == ICN and ar.web_id == "ana"
                and self.role(ar.requested_role) == "ROLE_AUTHORIZED_USER"
                and ar.granted_role == 0, "request fields icn/web_id/requested_role/granted_role", str(ar))
        R.info(f"RequestAccess: id={ar.access_request_id} state={self.state(ar.state)}")

        self.mail.wait_for(self.emails["stc1"],
                           lambda x: re.search(r"\bana\b|ana@example\.com|ana silva", text_of(x)) is not None,
                           "new request by ana (names her)", exclude=before)
        self.mail.wait_for(self.emails["ana"], lambda x: "provisional caller" in text_of(x),
                           "Provisional Caller explanation", exclude=before)
        vm = self.mail.wait_for(self.emails["ana"], lambda x: verification_code(x) is not None,
                                "verification code", exclude=before)
        self.ana_code = verification_code(vm)
        R.info(f"ana's code: {self.ana_code}")

        R.step("CheckEntitlement for ana while pending")
        self.expect_check("ana", "ACTION_VIEW_SUPPORT_AREA", True, "GRANTED", role="ROLE_PROVISIONAL_CALLER")
        self.expect_check("ana", "ACTION_OPEN_SERVICE_REQUEST", False, "REQUEST_PENDING",
                          role="ROLE_PROVISIONAL_CALLER", product="db2", severity=3)
        # A person may check their own entitlement without a scope.
        self.expect_check("ana", "ACTION_VIEW_SUPPORT_AREA", True, "GRANTED", token=self.tok["ana"])

    def step_stc_approves(self) -> None:
        R.step("STC lists pending requests and approves ana's")
        r = call(self.access.ListAccessRequests, self.acc.ListAccessRequestsRequest(
            icn=ICN, state=self.t.AccessRequestState.Value("ACCESS_REQUEST_STATE_PENDING")), self.tok["stc1"])
        ids = [x.access_request_id for x in r.access_requests]
        R.check(self.ana_req_id in ids, "ListAccessRequests(PENDING) includes ana's request", str(ids))
        R.check(all(self.state(x.state) == "ACCESS_REQUEST_STATE_PENDING" for x in r.access_requests),
                "ListAccessRequests(PENDING) returns only PENDING", str([self.state(x.state) for x in r.access_requests]))
        mine = [x for x in r.access_requests if x.access_request_id == self.ana_req_id]
        if mine:
            R.check(mine[0].requester_email == self.emails["ana"], "listed request shows requester_email",
                    repr(mine[0].requester_email))

        before = self.mail.paths()
        r = call(self.access.ApproveRequest, self.acc.ApproveRequestRequest(
            access_request_id=self.ana_req_id), self.tok["stc1"])
        self.ct(r)
        ar = r.access_request
        R.check(self.state(ar.state) == "ACCESS_REQUEST_STATE_APPROVED", "ApproveRequest -> APPROVED",
                self.state(ar.state))
        R.check(self.role(ar.granted_role) == "ROLE_AUTHORIZED_USER",
                "granted_role unset -> requested role AUTHORIZED_USER", self.role(ar.granted_role))
        R.check(ar.decided_by == "stc1", "decided_by is stc1", repr(ar.decided_by))
        R.info(f"ApproveRequest: state={self.state(ar.state)} granted={self.role(ar.granted_role)}")
        self.mail.wait_for(self.emails["ana"], lambda x: "approv" in text_of(x), "approval", exclude=before)

        R.step("ana approved but unverified; then verifies")
        self.expect_check("ana", "ACTION_OPEN_SERVICE_REQUEST", False, "EMAIL_NOT_VERIFIED",
                          role="ROLE_AUTHORIZED_USER", product="db2", severity=1)
        require(self.ana_code is not None, "have ana's verification code")
        r = call(self.access.VerifyEmail, self.acc.VerifyEmailRequest(code=self.ana_code), self.tok["ana"])
        self.ct(r)
        R.check(r.email_verified, "VerifyEmail(ana) -> email_verified", str(r))

        R.step("CheckEntitlement for ana, verified Authorized User")
        g = self.expect_check("ana", "ACTION_OPEN_SERVICE_REQUEST", True, "GRANTED",
                              role="ROLE_AUTHORIZED_USER", product="db2", severity=1)
        if g is not None and g.allowed:
            R.check(g.contract_id == "C-DB2-24X7", "granting contract is C-DB2-24X7", repr(g.contract_id))
        self.expect_check("ana", "ACTION_OPEN_SERVICE_REQUEST", False, "SEVERITY_NOT_COVERED",
                          product="mq", severity=1)
        g = self.expect_check("ana", "ACTION_OPEN_SERVICE_REQUEST", True, "GRANTED", product="mq", severity=2)
        if g is not None and g.allowed:
            R.check(g.contract_id == "C-MQ-BUS", "granting contract is C-MQ-BUS", repr(g.contract_id))
        self.expect_check("ana", "ACTION_OPEN_SERVICE_REQUEST", False, "PRODUCT_NOT_COVERED",
                          product="was", severity=3)
        self.expect_check("ana", "ACTION_MANAGE_USERS", False, "ROLE_INSUFFICIENT")

    def step_bob_denied(self) -> None:
        R.step("bob: RequestAccess(TECHNICAL_CONTACT), STC denies")
        r, before = self.request_access("bob", "ROLE_TECHNICAL_CONTACT")
        ar = r.access_request
        self.bob_req_id = ar.access_request_id
        R.check(self.state(ar.state) == "ACCESS_REQUEST_STATE_PENDING"
                and self.role(ar.requested_role) == "ROLE_TECHNICAL_CONTACT",
                "bob's request PENDING for TECHNICAL_CONTACT", str(ar))
        reason = "Bob is not on the support team"
        before = self.mail.paths()
        r = call(self.access.DenyRequest, self.acc.DenyRequestRequest(
            access_request_id=self.bob_req_id, reason=reason), self.tok["stc1"])
        self.ct(r)
        ar = r.access_request
        R.check(self.state(ar.state) == "ACCESS_REQUEST_STATE_DENIED", "DenyRequest -> DENIED", self.state(ar.state))
        R.check(ar.decision_reason == reason, "decision_reason is the given reason", repr(ar.decision_reason))
        R.info(f"DenyRequest: state={self.state(ar.state)} reason={ar.decision_reason!r}")
        self.mail.wait_for(self.emails["bob"], lambda x: "not on the support team" in text_of(x),
                           "denial with the reason", exclude=before)
        self.expect_check("bob", "ACTION_OPEN_SERVICE_REQUEST", False, "REQUEST_DENIED", product="db2", severity=3)

    def step_roles(self) -> None:
        R.step("dave: approved with a lower role, resend code, promoted to TC")
        C = grpc.StatusCode
        stc = self.tok["stc1"]
        r, before = self.request_access("dave", "ROLE_TECHNICAL_CONTACT")
        dave_id = r.access_request.access_request_id
        old = self.mail.wait_for(self.emails["dave"], lambda x: verification_code(x) is not None,
                                 "verification code on request", exclude=before)
        old_code = verification_code(old)
        expect_error("ApproveRequest granting SITE_TECHNICAL_CONTACT", self.access.ApproveRequest,
                     self.acc.ApproveRequestRequest(access_request_id=dave_id,
                                                    granted_role=self.t.Role.Value("ROLE_SITE_TECHNICAL_CONTACT")),
                     stc, (C.INVALID_ARGUMENT, C.PERMISSION_DENIED))
        r = call(self.access.ApproveRequest, self.acc.ApproveRequestRequest(
            access_request_id=dave_id, granted_role=self.t.Role.Value("ROLE_AUTHORIZED_USER")), stc)
        self.ct(r)
        R.check(self.state(r.access_request.state) == "ACCESS_REQUEST_STATE_APPROVED"
                and self.role(r.access_request.granted_role) == "ROLE_AUTHORIZED_USER"
                and self.role(r.access_request.requested_role) == "ROLE_TECHNICAL_CONTACT",
                "TC request approved as the lower role AUTHORIZED_USER", str(r.access_request))

        # A resend right after the request's code may be rate limited (RESOURCE_EXHAUSTED); the
        # contract only says "Rate limited", so both answers are accepted, and the test of
        # "earlier codes stop working" runs only when the resend went through.
        before = self.mail.paths()
        code_to_use = old_code
        try:
            r = call(self.access.SendVerificationEmail, self.acc.SendVerificationEmailRequest(), self.tok["dave"])
        except grpc.RpcError as e:
            got, msg, info, _ = rich_error(e)
            R.check(got == C.RESOURCE_EXHAUSTED, "immediate resend: OK or RESOURCE_EXHAUSTED",
                    f"{got.name}: {msg}")
            R.check(info is not None and bool(UPPER_SNAKE.match(info.reason)),
                    "rate-limit refusal has an UPPER_SNAKE ErrorInfo", str(info))
            R.info(f"immediate resend: {got.name} reason={info.reason if info else None} msg={msg!r}")
        else:
            R.check(r.email == self.emails["dave"], "SendVerificationEmail names dave's address", repr(r.email))
            R.check(r.expire_time.seconds > time.time(), "new code expires in the future", str(r.expire_time))
            new = self.mail.wait_for(self.emails["dave"], lambda x: verification_code(x) is not None,
                                     "resent verification code", exclude=before)
            new_code = verification_code(new)
            R.check(new_code is not None and new_code != old_code, "resent code differs from the first",
                    f"{old_code} vs {new_code}")
            code_to_use = new_code
            if old_code:
                try:
                    r = call(self.access.VerifyEmail, self.acc.VerifyEmailRequest(code=old_code), self.tok["dave"])
                    R.check(not r.email_verified, "the superseded code no longer verifies", str(r))
                except grpc.RpcError as e:
                    got, msg, info, _ = rich_error(e)
                    R.check(got in (C.INVALID_ARGUMENT, C.FAILED_PRECONDITION, C.NOT_FOUND, C.PERMISSION_DENIED),
                            "the superseded code is refused", f"{got.name}: {msg}")
                    R.check(info is not None, "refusal has ErrorInfo")
        self.expect_check("dave", "ACTION_OPEN_SERVICE_REQUEST", False, "EMAIL_NOT_VERIFIED", product="db2", severity=3)
        try:
            r = call(self.access.VerifyEmail, self.acc.VerifyEmailRequest(code="ZZZZ0000"), self.tok["dave"])
            R.check(not r.email_verified, "a wrong code does not verify", str(r))
        except grpc.RpcError as e:
            got, msg, info, _ = rich_error(e)
            R.check(got in (C.INVALID_ARGUMENT, C.FAILED_PRECONDITION, C.NOT_FOUND, C.PERMISSION_DENIED),
                    "a wrong code is refused with a client-error code", f"{got.name}: {msg}")
            R.check(info is not None, "wrong-code refusal has ErrorInfo")
            R.info(f"wrong code: {got.name} reason={info.reason if info else None} msg={msg!r}")
        r = call(self.access.VerifyEmail, self.acc.VerifyEmailRequest(code=code_to_use or ""), self.tok["dave"])
        self.ct(r)
        R.check(r.email_verified, "VerifyEmail(dave) -> verified", str(r))
        self.expect_check("dave", "ACTION_OPEN_SERVICE_REQUEST", True, "GRANTED", product="db2", severity=3)
        self.expect_check("dave", "ACTION_MANAGE_USERS", False, "ROLE_INSUFFICIENT", role="ROLE_AUTHORIZED_USER")

        expect_error("UpdateMemberRole to SITE_TECHNICAL_CONTACT", self.access.UpdateMemberRole,
                     self.acc.UpdateMemberRoleRequest(icn=ICN, web_id="dave",
                                                      role=self.t.Role.Value("ROLE_SITE_TECHNICAL_CONTACT")),
                     stc, (C.INVALID_ARGUMENT, C.PERMISSION_DENIED))
        r = call(self.access.UpdateMemberRole, self.acc.UpdateMemberRoleRequest(
            icn=ICN, web_id="dave", role=self.t.Role.Value("ROLE_TECHNICAL_CONTACT")), stc)
        self.ct(r)
        R.check(self.role(r.membership.role) == "ROLE_TECHNICAL_CONTACT", "UpdateMemberRole(dave) -> TC",
                str(r.membership))
        self.expect_check("dave", "ACTION_MANAGE_USERS", True, "GRANTED", role="ROLE_TECHNICAL_CONTACT")
        expect_error("TC changes an STC's role", self.access.UpdateMemberRole,
                     self.acc.UpdateMemberRoleRequest(icn=ICN, web_id="stc1",
                                                      role=self.t.Role.Value("ROLE_AUTHORIZED_USER")),
                     self.tok["dave"], (C.PERMISSION_DENIED, C.FAILED_PRECONDITION))
        expect_error("TC removes an STC", self.access.RemoveMember,
                     self.acc.RemoveMemberRequest(icn=ICN, web_id="stc1", reason="x"),
                     self.tok["dave"], (C.PERMISSION_DENIED, C.FAILED_PRECONDITION))
        expect_error("operator removes the last STC", self.admin.RemoveSiteTechnicalContact,
                     self.adm.RemoveSiteTechnicalContactRequest(icn=ICN, web_id="stc1", reason="x"),
                     self.tok["operator"], C.FAILED_PRECONDITION)

        R.step("two administrators decide the same request at once: exactly one wins")
        for who in ("erin", "frank", "gina"):
            r, _ = self.request_access(who, "ROLE_AUTHORIZED_USER")
            rid = r.access_request.access_request_id
            barrier = threading.Barrier(2)
            results: dict[str, object] = {}

            def act(name, fn, req, tok):
                barrier.wait(timeout=10)
                try:
                    results[name] = call(fn, req, tok)
                except grpc.RpcError as e:
                    results[name] = e

            ts_ = [threading.Thread(target=act, args=("approve", self.access.ApproveRequest,
                                                     self.acc.ApproveRequestRequest(access_request_id=rid), stc)),
                   threading.Thread(target=act, args=("deny", self.access.DenyRequest,
                                                     self.acc.DenyRequestRequest(access_request_id=rid,
                                                                                 reason="race"), self.tok["dave"]))]
            for t in ts_:
                t.start()
            for t in ts_:
                t.join(30)
            oks = [k for k, v in results.items() if not isinstance(v, grpc.RpcError)]
            errs = {k: v.code().name for k, v in results.items() if isinstance(v, grpc.RpcError)}
            R.check(len(oks) == 1, f"{who}: exactly one of approve/deny succeeded", f"ok={oks} errors={errs}")
            R.check(all(c in ("FAILED_PRECONDITION", "ABORTED") for c in errs.values()),
                    f"{who}: the loser gets FAILED_PRECONDITION or ABORTED", str(errs))
            if len(oks) == 1:
                want = "ACCESS_REQUEST_STATE_APPROVED" if oks[0] == "approve" else "ACCESS_REQUEST_STATE_DENIED"
                lst = call(self.access.ListAccessRequests, self.acc.ListAccessRequestsRequest(icn=ICN), stc)
                final = [self.state(x.state) for x in lst.access_requests if x.access_request_id == rid]
                R.check(final == [want], f"{who}: stored state matches the winner ({oks[0]})", str(final))
                R.info(f"{who}: winner={oks[0]} loser={errs}")

    def step_second_account(self) -> None:
        R.step("second account: contracts in force, all-product contract, validation")
        C = grpc.StatusCode
        op = self.tok["operator"]
        icn2 = "42"
        r = call(self.admin.CreateAccount, self.adm.CreateAccountRequest(
            icn=icn2, company_name="Beispiel GmbH", country_code="DE"), op)
        R.check(r.account.icn == icn2 and r.account.country_code == "DE", "CreateAccount(42, DE)", str(r.account))
        r = call(self.admin.AddSiteTechnicalContact, self.adm.AddSiteTechnicalContactRequest(
            icn=icn2, web_id="stc1", email=self.emails["stc1"], given_name="Sam", family_name="Tech"), op)
        self.ct(r)
        R.check(self.role(r.membership.role) == "ROLE_SITE_TECHNICAL_CONTACT", "stc1 is also STC of 42",
                str(r.membership))
        R.check(r.membership.email_verified, "verification belongs to the person: stc1 already verified",
                str(r.membership))
        RA, Req = self.access.RequestAccess, self.acc.RequestAccessRequest
        AU = self.t.Role.Value("ROLE_AUTHORIZED_USER")
        expect_error("RequestAccess ICN 1234567 with the wrong country DE", RA,
                     Req(icn=ICN, country_code="DE", requested_role=AU), self.tok["mallory"],
                     (C.NOT_FOUND, C.INVALID_ARGUMENT, C.FAILED_PRECONDITION))
        expect_error("RequestAccess icn of 11 digits", RA,
                     Req(icn="12345678901", country_code="US", requested_role=AU), self.tok["mallory"],
                     C.INVALID_ARGUMENT, field="icn")
        expect_error("RequestAccess icn with a space", RA,
                     Req(icn="123 4567", country_code="US", requested_role=AU), self.tok["mallory"],
                     C.INVALID_ARGUMENT, field="icn")
        expect_error("RequestAccess for ROLE_SITE_TECHNICAL_CONTACT", RA,
                     Req(icn=ICN, country_code="US", requested_role=self.t.Role.Value("ROLE_SITE_TECHNICAL_CONTACT")),
                     self.tok["mallory"], C.INVALID_ARGUMENT, field="requested_role")
        expect_error("CheckEntitlement severity 5", self.checks.CheckEntitlement,
                     self.ent.CheckEntitlementRequest(web_id="stc1", icn=ICN, severity=5, product_id="db2",
                                                      action=self.ent.Action.Value("ACTION_OPEN_SERVICE_REQUEST")),
                     self.tok["checker"], C.INVALID_ARGUMENT, field="severity")
        self.expect_check("stc1", "ACTION_VIEW_SUPPORT_AREA", False, "UNKNOWN_ACCOUNT", icn="7654321")

        self.expect_check("stc1", "ACTION_OPEN_SERVICE_REQUEST", False, "NO_ACTIVE_CONTRACT",
                          product="db2", severity=3, icn=icn2)
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        day = dt.timedelta(days=1)
        for cid, start, end in (("C-OLD", now - 30 * day, now - day), ("C-FUTURE", now + day, now + 30 * day)):
            r = call(self.admin.UpsertSupportContract, self.adm.UpsertSupportContractRequest(
                icn=icn2, contract_id=cid, start_time=ts(start), end_time=ts(end), includes_24x7=True), op)
            self.ct(r)
        self.expect_check("stc1", "ACTION_OPEN_SERVICE_REQUEST", False, "NO_ACTIVE_CONTRACT",
                          product="db2", severity=3, icn=icn2)
        r = call(self.admin.UpsertSupportContract, self.adm.UpsertSupportContractRequest(
            icn=icn2, contract_id="C-ALL", start_time=ts(now - day), end_time=ts(now + 30 * day),
            includes_24x7=False), op)
        self.ct(r)
        R.check(list(r.contract.product_ids) == [], "C-ALL has no product list", str(r.contract))
        g = self.expect_check("stc1", "ACTION_OPEN_SERVICE_REQUEST", True, "GRANTED", product="anything",
                              severity=2, icn=icn2)
        if g is not None and g.allowed:
            R.check(g.contract_id == "C-ALL", "granted by C-ALL", repr(g.contract_id))
        self.expect_check("stc1", "ACTION_OPEN_SERVICE_REQUEST", False, "SEVERITY_NOT_COVERED",
                          product="anything", severity=1, icn=icn2)
        r = call(self.admin.UpsertSupportContract, self.adm.UpsertSupportContractRequest(
            icn=icn2, contract_id="C-ALL", start_time=ts(now - day), end_time=ts(now + 30 * day),
            includes_24x7=True), op)
        self.ct(r)
        R.check(r.contract.includes_24x7, "upsert replaced C-ALL with a 24x7 one", str(r.contract))
        self.expect_check("stc1", "ACTION_OPEN_SERVICE_REQUEST", True, "GRANTED", product="anything",
                          severity=1, icn=icn2)
        expect_error("UpsertSupportContract with end before start", self.admin.UpsertSupportContract,
                     self.adm.UpsertSupportContractRequest(icn=icn2, contract_id="C-BAD", start_time=ts(now),
                                                           end_time=ts(now - day)), op, C.INVALID_ARGUMENT)

    def step_my_access(self) -> None:
        R.step("GetMyAccess for ana")
        r = call(self.access.GetMyAccess, self.acc.GetMyAccessRequest(), self.tok["ana"])
        R.check(r.web_id == "ana", "web_id is ana", repr(r.web_id))
        R.check(r.email == self.emails["ana"], "email is ana's", repr(r.email))
        R.check(r.email_verified, "email_verified true", str(r.email_verified))
        ms = [(m.icn, self.role(m.role)) for m in r.memberships]
        R.check((ICN, "ROLE_AUTHORIZED_USER") in ms, "membership of ICN as AUTHORIZED_USER", str(ms))
        reqs = [(x.access_request_id, self.state(x.state)) for x in r.access_requests]
        R.check((self.ana_req_id, "ACCESS_REQUEST_STATE_APPROVED") in reqs, "her APPROVED request listed", str(reqs))
        R.info(f"GetMyAccess: memberships={ms} verified={r.email_verified}")

    def step_remove_ana(self) -> None:
        R.step("STC removes ana")
        r = call(self.access.ListMembers, self.acc.ListMembersRequest(icn=ICN), self.tok["stc1"])
        R.check({"stc1", "ana"} <= {m.web_id for m in r.memberships}, "ListMembers has stc1 and ana",
                str([m.web_id for m in r.memberships]))
        r = call(self.access.RemoveMember, self.acc.RemoveMemberRequest(
            icn=ICN, web_id="ana", reason="left the company"), self.tok["stc1"])
        self.ct(r)
        R.check(r.membership.web_id == "ana", "RemoveMember returns ana's membership", str(r.membership))
        self.expect_check("ana", "ACTION_OPEN_SERVICE_REQUEST", False, "ACCESS_REVOKED", product="db2", severity=1)
        self.expect_check("ana", "ACTION_VIEW_SUPPORT_AREA", False, "ACCESS_REVOKED")

    def step_suspend(self) -> None:
        R.step("operator suspends and reactivates the account")
        op = self.tok["operator"]
        r = call(self.admin.SetAccountStatus, self.adm.SetAccountStatusRequest(
            icn=ICN, status=self.t.AccountStatus.Value("ACCOUNT_STATUS_SUSPENDED"), reason="unpaid"), op)
        self.ct(r)
        R.check(r.account.status == self.t.AccountStatus.Value("ACCOUNT_STATUS_SUSPENDED"),
                "SetAccountStatus -> SUSPENDED", str(r.account))
        self.expect_check("stc1", "ACTION_VIEW_SUPPORT_AREA", False, "ACCOUNT_SUSPENDED")
        self.expect_check("stc1", "ACTION_OPEN_SERVICE_REQUEST", False, "ACCOUNT_SUSPENDED", product="db2", severity=1)
        self.expect_check("ana", "ACTION_OPEN_SERVICE_REQUEST", False, "ACCOUNT_SUSPENDED", product="db2", severity=1)
        r = call(self.admin.SetAccountStatus, self.adm.SetAccountStatusRequest(
            icn=ICN, status=self.t.AccountStatus.Value("ACCOUNT_STATUS_ACTIVE"), reason="paid"), op)
        self.ct(r)
        R.check(r.account.status == self.t.AccountStatus.Value("ACCOUNT_STATUS_ACTIVE"),
                "SetAccountStatus -> ACTIVE", str(r.account))
        self.expect_check("stc1", "ACTION_VIEW_SUPPORT_AREA", True, "GRANTED")
        self.expect_check("stc1", "ACTION_OPEN_SERVICE_REQUEST", True, "GRANTED", product="db2", severity=1)

    def step_errors(self) -> None:
        R.step("error cases (status codes and ErrorInfo)")
        RA, Req = self.access.RequestAccess, self.acc.RequestAccessRequest
        AU = self.t.Role.Value("ROLE_AUTHORIZED_USER")
        C = grpc.StatusCode
        carol = self.tok["carol"]
        expect_error("RequestAccess icn=12a4567", RA, Req(icn="12a4567", country_code=COUNTRY, requested_role=AU),
                     carol, C.INVALID_ARGUMENT, field="icn")
        expect_error("RequestAccess country=USA", RA, Req(icn=ICN, country_code="USA", requested_role=AU),
                     carol, C.INVALID_ARGUMENT, field="country_code")
        expect_error("RequestAccess unknown ICN 7654321", RA,
                     Req(icn="7654321", country_code=COUNTRY, requested_role=AU), carol, C.NOT_FOUND)
        expect_error("RequestAccess without a token", RA,
                     Req(icn=ICN, country_code=COUNTRY, requested_role=AU), None, C.UNAUTHENTICATED)
        expect_error("RequestAccess with a garbage token", RA,
                     Req(icn=ICN, country_code=COUNTRY, requested_role=AU), "not.a.jwt", C.UNAUTHENTICATED)
        expect_error("RequestAccess with a token for another audience", RA,
                     Req(icn=ICN, country_code=COUNTRY, requested_role=AU), self.tok["wrong_aud"],
                     C.UNAUTHENTICATED)
        expect_error("ApproveRequest on an already approved request", self.access.ApproveRequest,
                     self.acc.ApproveRequestRequest(access_request_id=self.ana_req_id), self.tok["stc1"],
                     C.FAILED_PRECONDITION)
        expect_error("DenyRequest on an already denied request", self.access.DenyRequest,
                     self.acc.DenyRequestRequest(access_request_id=self.bob_req_id, reason="again"),
                     self.tok["stc1"], C.FAILED_PRECONDITION)

        # A fresh pending request (carol) that non-admins try to approve.
        r = call(RA, Req(icn=ICN, country_code=COUNTRY, requested_role=AU), carol)
        carol_id = r.access_request.access_request_id
        R.check(self.state(r.access_request.state) == "ACCESS_REQUEST_STATE_PENDING", "carol's request PENDING",
                str(r.access_request))
        expect_error("ApproveRequest by a non-member (mallory)", self.access.ApproveRequest,
                     self.acc.ApproveRequestRequest(access_request_id=carol_id), self.tok["mallory"],
                     C.PERMISSION_DENIED)
        expect_error("ApproveRequest by the requester herself", self.access.ApproveRequest,
                     self.acc.ApproveRequestRequest(access_request_id=carol_id), carol, C.PERMISSION_DENIED)
        expect_error("CheckEntitlement for someone else without scope", self.checks.CheckEntitlement,
                     self.ent.CheckEntitlementRequest(web_id="stc1", icn=ICN,
                                                      action=self.ent.Action.Value("ACTION_VIEW_SUPPORT_AREA")),
                     self.tok["bob"], C.PERMISSION_DENIED)
        expect_error("CreateAccount by a person without admin scope", self.admin.CreateAccount,
                     self.adm.CreateAccountRequest(icn="1111111", company_name="X", country_code="US"),
                     self.tok["mallory"], C.PERMISSION_DENIED)
        expect_error("CreateAccount for an existing ICN", self.admin.CreateAccount,
                     self.adm.CreateAccountRequest(icn=ICN, company_name="Dup", country_code="US"),
                     self.tok["operator"], C.ALREADY_EXISTS)
        expect_error("DenyRequest without a reason", self.access.DenyRequest,
                     self.acc.DenyRequestRequest(access_request_id=carol_id, reason=""), self.tok["stc1"],
                     C.INVALID_ARGUMENT, field="reason")
        expect_error("ListAuditEvents by a person", self.admin.ListAuditEvents,
                     self.adm.ListAuditEventsRequest(icn=ICN), self.tok["ana"], C.PERMISSION_DENIED)

        # carol takes her request back.
        r = call(self.access.WithdrawRequest, self.acc.WithdrawRequestRequest(
            access_request_id=carol_id, reason="wrong company"), carol)
        R.check(self.state(r.access_request.state) == "ACCESS_REQUEST_STATE_WITHDRAWN",
                "WithdrawRequest(carol) -> WITHDRAWN", str(r.access_request))

    def step_listing(self) -> None:
        R.step("ListAccessRequests: newest first, paging, filters, permissions")
        C = grpc.StatusCode
        stc = self.tok["stc1"]
        full = call(self.access.ListAccessRequests, self.acc.ListAccessRequestsRequest(icn=ICN, page_size=500), stc)
        all_ids = [x.access_request_id for x in full.access_requests]
        R.check(len(all_ids) >= 7 and not full.next_page_token, "one big page holds every request (>= 7)",
                f"{len(all_ids)} ids, next={full.next_page_token!r}")
        times = [(x.create_time.seconds, x.create_time.nanos) for x in full.access_requests]
        R.check(times == sorted(times, reverse=True), "newest first", str(times))
        paged, token = [], ""
        for _ in range(50):
            r = call(self.access.ListAccessRequests, self.acc.ListAccessRequestsRequest(
                icn=ICN, page_size=2, page_token=token), stc)
            R.check(len(r.access_requests) <= 2, "page_size 2 respected", str(len(r.access_requests)))
            paged.extend(x.access_request_id for x in r.access_requests)
            token = r.next_page_token
            if not token:
                break
        R.check(paged == all_ids, "paging with page_size 2 yields the same list, no duplicates",
                f"paged={paged} full={all_ids}")
        denied = call(self.access.ListAccessRequests, self.acc.ListAccessRequestsRequest(
            icn=ICN, state=self.t.AccessRequestState.Value("ACCESS_REQUEST_STATE_DENIED")), stc)
        R.check(self.bob_req_id in [x.access_request_id for x in denied.access_requests]
                and all(self.state(x.state) == "ACCESS_REQUEST_STATE_DENIED" for x in denied.access_requests),
                "state=DENIED filter", str([(x.web_id, self.state(x.state)) for x in denied.access_requests]))
        ops = call(self.access.ListAccessRequests, self.acc.ListAccessRequestsRequest(icn=ICN, page_size=500),
                   self.tok["operator"])
        R.check([x.access_request_id for x in ops.access_requests] == all_ids, "an operator sees the same list")
        expect_error("ListAccessRequests by a plain member", self.access.ListAccessRequests,
                     self.acc.ListAccessRequestsRequest(icn=ICN), self.tok["bob"],
                     C.PERMISSION_DENIED)
        expect_error("ListAccessRequests with a garbage page_token", self.access.ListAccessRequests,
                     self.acc.ListAccessRequestsRequest(icn=ICN, page_token="!!garbage!!"), stc,
                     C.INVALID_ARGUMENT, field="page_token")
        expect_error("ApproveRequest for an unknown id", self.access.ApproveRequest,
                     self.acc.ApproveRequestRequest(access_request_id="01a20dc0-0000-7000-8000-000000000000"),
                     stc, (C.NOT_FOUND, C.INVALID_ARGUMENT))
        m = call(self.access.ListMembers, self.acc.ListMembersRequest(icn=ICN), self.tok["operator"])
        R.check({"stc1", "dave"} <= {x.web_id for x in m.memberships} and "ana" not in {x.web_id for x in m.memberships},
                "ListMembers (operator): stc1 and dave, not the removed ana",
                str([(x.web_id, self.role(x.role)) for x in m.memberships]))

    def step_audit(self) -> None:
        R.step("ListAuditEvents for the ICN")
        events = []
        token = ""
        for _ in range(50):
            r = call(self.admin.ListAuditEvents, self.adm.ListAuditEventsRequest(
                icn=ICN, page_size=20, page_token=token), self.tok["operator"])
            events.extend(r.audit_events)
            token = r.next_page_token
            if not token:
                break
        R.info(f"{len(events)} events: " + ", ".join(sorted({e.action for e in events})))
        # account create, 2 contracts, STC add, STC verify?, ana request, approve, bob request, deny,
        # remove, suspend, reactivate, carol request, withdraw: at least 13 changes.
        R.check(len(events) >= 13, "at least 13 audit events for the changes made", f"got {len(events)}")
        R.check(all(e.icn == ICN for e in events), "every event is for the ICN",
                str({e.icn for e in events}))
        times = [(e.event_time.seconds, e.event_time.nanos) for e in events]
        R.check(times == sorted(times, reverse=True), "newest first")
        targets = {e.target_id for e in events}
        for rid, who in ((self.ana_req_id, "ana"), (self.bob_req_id, "bob")):
            R.check(rid in targets, f"an event targets {who}'s request", rid)
        actors = {e.actor for e in events}
        R.check({"operator1", "stc1", "ana", "bob", "carol"} <= actors,
                "actors include operator1, stc1, ana, bob, carol", str(sorted(actors)))
        acts = " ".join(e.action for e in events).lower()
        for word in ("approve", "deny", "remove", "withdraw"):
            R.check(word in acts, f"an event action mentions {word!r}", str(sorted({e.action for e in events})))
        ap = [e for e in events if e.target_id == self.ana_req_id and "approve" in e.action.lower()]
        if ap:
            R.check(ap[0].actor == "stc1" and ap[0].before_json != "" and ap[0].after_json != "",
                    "approve event: actor stc1, before/after JSON", str(ap[0]))
        dn = [e for e in events if e.target_id == self.bob_req_id and "deny" in e.action.lower()]
        if dn:
            R.check(dn[0].reason == "Bob is not on the support team", "deny event carries the reason",
                    repr(dn[0].reason))
        sus = [e for e in events if "unpaid" == e.reason]
        R.check(bool(sus), "suspension event carries its reason 'unpaid'")

    def step_reflection(self) -> None:
        R.step("server reflection (grpc.reflection.v1)")
        method = self.ch.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        try:
            resps = list(method(iter([reflection_pb2.ServerReflectionRequest(list_services="*")]),
                                timeout=RPC_TIMEOUT))
        except grpc.RpcError as e:
            R.check(False, "ServerReflectionInfo(list_services) answers", f"{e.code().name}: {e.details()}")
            return
        names = sorted(s.name for r in resps for s in r.list_services_response.service)
        R.info(f"services: {names}")
        for svc in ("entitlement.v1.AccessService", "entitlement.v1.EntitlementService",
                    "entitlement.v1.AccountAdminService"):
            R.check(svc in names, f"reflection lists {svc}", str(names))


# --------------------------------------------------------------------------- #
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/debug/entitlements",
                    help="service binary (relative paths are resolved against the repo root)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (data, mail, server log)")
    ap.add_argument("--start-timeout", type=float, default=60.0, help="seconds to wait for SERVING")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every passing check too")
    args = ap.parse_args()
    R.verbose = args.verbose

    binary = args.binary if os.path.isabs(args.binary) else os.path.join(REPO_ROOT, args.binary)
    if not os.access(binary, os.X_OK):
        print(f"binary not found or not executable: {binary} (run `cargo build` first)", file=sys.stderr)
        return 2

    tmp = tempfile.mkdtemp(prefix="entitlements-e2e-")
    stubs, data = os.path.join(tmp, "stubs"), os.path.join(tmp, "data")
    os.makedirs(stubs)
    os.makedirs(data)
    print(f"temp dir: {tmp}")
    server = None
    exit_code = None
    harness_error = ""
    try:
        R.step("generate stubs")
        generate_stubs(stubs)
        R.check(True, "protoc generated Python stubs")

        R.step("start server")
        server = Server(binary, data)
        server.start()
        channel = grpc.insecure_channel(server.addr)
        t0 = time.monotonic()
        server.wait_serving(channel, args.start_timeout)
        R.info(f"SERVING on {server.addr} after {time.monotonic() - t0:.1f}s")
        R.check(True, "Health/Check('') SERVING")
        log = server.log_text()
        R.check(server.addr in log, "log names the listen address", log[-800:])
        R.check(re.search(r"(?i)dev(elopment)?[ -]mode", log) is not None,
                "log says loudly that development mode is on", log[-800:])

        flow = Flow(binary, data, channel, Mailbox(os.path.join(data, "mail")))
        steps = [
            (flow.step_tokens, True), (flow.step_operator_setup, True), (flow.step_ana_requests, True),
            (flow.step_stc_approves, False), (flow.step_bob_denied, False), (flow.step_roles, False),
            (flow.step_second_account, False), (flow.step_my_access, False),
            (flow.step_remove_ana, False), (flow.step_suspend, False), (flow.step_errors, False),
            (flow.step_listing, False), (flow.step_audit, False), (flow.step_reflection, False),
        ]
        for fn, critical in steps:
            try:
                fn()
            except StepAbort:
                if critical:
                    print("   (critical step failed: stopping the flow)")
                    break
            except grpc.RpcError as e:
                R.check(False, "unexpected RPC error", f"{e.code().name}: {e.details()}")
                if critical:
                    print("   (critical step failed: stopping the flow)")
                    break
            except Exception as e:  # noqa: BLE001
                R.check(False, "unexpected exception", f"{type(e).__name__}: {e}")
                traceback.print_exc()
                if critical:
                    break
        channel.close()
    except Exception as e:  # noqa: BLE001 - harness failure
        print(f"\nHARNESS ERROR: {e}", flush=True)
        harness_error = str(e).splitlines()[0]
        exit_code = 2
    finally:
        if server is not None and server.proc is not None:
            R.step("graceful shutdown (SIGTERM)")
            early = server.proc.poll()
            rc = server.stop(10.0)
            if exit_code is None:
                if early is not None:
                    R.check(False, "server still running at the end", f"it had exited with {early}")
                else:
                    R.check(rc == 0, "server exits 0 within 10 s of SIGTERM",
                            "killed after 10 s" if rc is None else f"exit code {rc}")
            if R.failures or exit_code is not None:
                print("\n--- last 40 lines of the server log ---")
                print("\n".join(server.log_text().splitlines()[-40:]))
        if args.keep or R.failures or exit_code is not None:
            print(f"\nkept {tmp} (server log: {os.path.join(data, 'server.log')}, mail: {os.path.join(data, 'mail')})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print("\n================ summary ================")
    print(f"{R.passed} passed, {len(R.failures)} failed")
    for w in R.warnings:
        print(f"  warning: {w}")
    for f in R.failures:
        print(f"  FAILED: {f}")
    if exit_code is not None:
        print(f"  HARNESS ERROR (exit {exit_code}): {harness_error}")
        return exit_code
    return 1 if R.failures else 0


if __name__ == "__main__":
    sys.exit(main())
