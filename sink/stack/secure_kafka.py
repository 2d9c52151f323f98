"""The secured local Kafka broker: the same jars and JVM as :class:`KafkaServer`, with three
client listeners and ACLs.

* ``SASL_SSL``: SCRAM-SHA-512, SCRAM-SHA-256, PLAIN and OAUTHBEARER over TLS (Confluent
  Cloud, MSK SCRAM, Aiven); OAuth tokens are JWTs of the stack's issuer (``Pki.jwt``),
  validated against its JWKS file, with audience ``kafka``;
* ``SSL``: mutual TLS, the client certificate's CN is the principal (Strimzi, Aiven);
* ``SASL_PLAINTEXT``: PLAIN and SCRAM without TLS; also the harness's admin listener.

SCRAM credentials are written at format time (``--add-scram``), PLAIN users live in the
listener's JAAS line. KRaft's ``StandardAuthorizer`` denies what no ACL allows: the sink's
principal ``User:warp`` may read topics starting ``secure.`` and groups starting
``warp-secure``, and write topics starting ``secure-dlq.``; ``User:admin`` is a super user.
"""

from __future__ import annotations

import base64
import logging
import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sink.stack.kafka import KAFKA_READY_S, LOG4J2, SINGLE_NODE, KafkaServer, kafka_answers
from sink.stack.pki import Pki
from sink.stack.process import StackError, free_ports, run_async, tail

SINK_USER, ADMIN_USER = "warp", "admin"
TOPIC_PREFIX, GROUP_PREFIX, DLQ_PREFIX = "secure.", "warp-secure", "secure-dlq."
LISTENERS = ("SASL_SSL", "SSL", "SASL_PLAINTEXT")
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
OAUTH_AUDIENCE, OAUTH_ISSUER = "kafka", "https://issuer.warp.test"

# The admin logs in with PLAIN over loopback on purpose; aiokafka warns about that each time.
logging.getLogger("aiokafka.conn").addFilter(
    lambda record: "in the clear" not in record.getMessage())


@dataclass(frozen=True)
class KafkaSecrets:
    sink_password: str
    admin_password: str
    keystore_password: str


def admin_client_kwargs(secrets: KafkaSecrets) -> dict[str, Any]:
    """aiokafka arguments for the super user on the SASL_PLAINTEXT listener."""
    return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
            "sasl_plain_username": ADMIN_USER, "sasl_plain_password": secrets.admin_password}


def _jaas_plain(secrets: KafkaSecrets, *, login: bool) -> str:
    # The broker logs in as admin on its own inter-broker listener; user_X are the accounts.
    own = (f'username="{ADMIN_USER}" password="{secrets.admin_password}" ' if login else "")
    return ("org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'{own}user_{ADMIN_USER}="{secrets.admin_password}" '
            f'user_{SINK_USER}="{secrets.sink_password}";')


class SecureKafkaServer(KafkaServer):
    """The broker under ``root`` with TLS material from ``pki``."""

    def __init__(self, root: Path, pki: Pki, secrets: KafkaSecrets) -> None:
        super().__init__(root)
        self.pki = pki
        self.secrets = secrets
        self.acls_done = root / "acls.done"

    def _java(self) -> list[str]:
        # Kafka 4 reads a JWKS file only where these properties allow it.
        jwks = self.pki.oauth_issuer()
        java, *rest = super()._java()
        return [java, f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={jwks.as_uri()}",
                f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.files={jwks}", *rest]

    def listener_ports(self) -> dict[str, int]:
        """Port of each listener (``SASL_SSL``, ``SSL``, ``SASL_PLAINTEXT``, ``CONTROLLER``)."""
        line = re.findall(r"^listeners=(.*)$", self.props.read_text(), re.M)[0]
        return {name: int(port) for name, port in re.findall(r"(\w+)://127\.0\.0\.1:(\d+)",
                                                              line)}

    def ports(self) -> tuple[int, int]:
        ports = self.listener_ports()
        return ports["SASL_SSL"], ports["CONTROLLER"]

    def init(self) -> None:
        """server.properties with the three secured listeners, and the storage formatted
        with the SCRAM credentials (once)."""
        data = self.dir / "data"
        if (data / "meta.properties").is_file() and self.props.is_file():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "log4j2.properties").write_text(LOG4J2)
        s = self.secrets
        server = self.pki.issue("kafka-server", "127.0.0.1", server=True)
        keystore = self.pki.pkcs12(server, s.keystore_password)
        p_sasl_ssl, p_ssl, p_sasl, p_ctl = free_ports(4)
        client = (f"SASL_SSL://127.0.0.1:{p_sasl_ssl},SSL://127.0.0.1:{p_ssl},"
                  f"SASL_PLAINTEXT://127.0.0.1:{p_sasl}")
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        props = {
            "process.roles": "broker,controller", "node.id": "1",
            "listeners": f"{client},CONTROLLER://127.0.0.1:{p_ctl}",
            "advertised.listeners": client,
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,SSL:SSL,"
                                              "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "SASL_PLAINTEXT",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
            "listener.name.sasl_ssl.sasl.enabled.mechanisms":
                "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN,OAUTHBEARER",
            # OAuth tokens signed by the stack's issuer; the principal is the `sub` claim
            "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config":
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
            "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class":
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
            "sasl.oauthbearer.jwks.endpoint.url": self.pki.oauth_issuer().as_uri(),
            # Kafka 4.1's default validator checks claims but not signatures
            "sasl.oauthbearer.jwt.validator.class":
                "org.apache.kafka.common.security.oauthbearer.BrokerJwtValidator",
            "sasl.oauthbearer.expected.audience": OAUTH_AUDIENCE,
            "sasl.oauthbearer.expected.issuer": OAUTH_ISSUER,
            "listener.name.sasl_ssl.plain.sasl.jaas.config": _jaas_plain(s, login=False),
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram,
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": _jaas_plain(s, login=True),
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": scram,
            "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": scram,
            "ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(keystore),
            "ssl.keystore.password": s.keystore_password,
            "ssl.truststore.type": "PEM", "ssl.truststore.location": str(self.pki.ca),
            "listener.name.ssl.ssl.client.auth": "required",
            # the principal of a client certificate is its CN (User:warp), not the whole DN
            "ssl.principal.mapping.rules": "RULE:^CN=([^,]+)(,.*)?$/$1/,DEFAULT",
            "authorizer.class.name": AUTHORIZER,
            # ANONYMOUS is the broker itself on the PLAINTEXT controller listener.
            "super.users": f"User:{ADMIN_USER};User:ANONYMOUS",
            "allow.everyone.if.no.acl.found": "false",
            "controller.quorum.voters": f"1@127.0.0.1:{p_ctl}", "log.dirs": str(data),
            **SINGLE_NODE,  # the plain stack's single-node tuning
        }
        self.props.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        self.props.chmod(0o600)
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        cmd = [*self._java(), "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
               f"--config={self.props}"]
        for mech in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
            cmd += ["--add-scram", f"{mech}=[name={SINK_USER},password={s.sink_password}]"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        if proc.returncode != 0:
            raise StackError(f"kafka storage format failed: {proc.stdout[-800:]}"
                             f"{proc.stderr[-800:]}")

    def admin_bootstrap(self) -> str:
        return f"127.0.0.1:{self.listener_ports()['SASL_PLAINTEXT']}"

    def wait(self, bootstrap: str = "") -> None:
        """Until the super user can list topics on the SASL_PLAINTEXT listener."""
        deadline = time.monotonic() + KAFKA_READY_S
        admin = admin_client_kwargs(self.secrets)
        while not run_async(kafka_answers(self.admin_bootstrap(), 3000, **admin)):
            if self.pid() is None:
                raise StackError(f"the Kafka broker exited; log {self.log}:\n{tail(self.log)}")
            if time.monotonic() > deadline:
                raise StackError(f"Kafka did not answer within {KAFKA_READY_S:.0f} s; log "
                                 f"{self.log}:\n{tail(self.log)}")
            time.sleep(0.2)

    def grant(self) -> None:
        """The sink's ACLs (once): read and describe its topics and groups, write and
        describe its dead-letter topics; nothing else."""
        if self.acls_done.is_file():
            return
        conf = self.dir / "admin.properties"
        conf.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                        f"sasl.jaas.config={_jaas_plain(self.secrets, login=True)}\n")
        conf.chmod(0o600)
        base = [*self._java(), "org.apache.kafka.tools.AclCommand", "--bootstrap-server",
                self.admin_bootstrap(), "--command-config", str(conf), "--add",
                "--allow-principal", f"User:{SINK_USER}", "--resource-pattern-type",
                "prefixed", "--force"]
        for args in (["--operation", "Read", "--operation", "Describe", "--topic", TOPIC_PREFIX,
                      "--group", GROUP_PREFIX],
                     ["--operation", "Write", "--operation", "Describe", "--topic", DLQ_PREFIX]):
            proc = subprocess.run([*base, *args], capture_output=True, text=True, check=False,
                                  timeout=120)
            if proc.returncode != 0:
                raise StackError(f"kafka-acls failed: {(proc.stdout + proc.stderr)[-800:]}")
        self.acls_done.write_text("ok\n")
