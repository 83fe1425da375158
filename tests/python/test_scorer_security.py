"""The scorer against a TLS + SASL/SCRAM broker (the real nisshi broker on loopback): a
throwaway CA and server certificate made with openssl, a SCRAM user made with the broker's
own CLI; the consumer, the producers and the admin client all connect through
`[kafka.security]`, an independent confluent-kafka client reads the predictions back, and a
wrong password or an untrusted certificate is a clear error at start, not a hang."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

import paths
import scorer_harness as h

USER, USER256, PASSWORD = "scorer", "scorer256", "s3cret-Pa55"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
            "-days", "2", "-subj", f"/CN={name}", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    with open(os.path.join(d, "san.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem",
            "-days", "2", "-extfile", "san.cnf", cwd=d)
    # PKCS#8 for the broker
    openssl("pkcs8", "-topk8", "-nocrypt", "-in", "server.key", "-out", "server.pk8", cwd=d)
    return d


@pytest.fixture(scope="module")
def broker(tmp_path_factory, pki):
    data = str(tmp_path_factory.mktemp("tls-broker"))
    # The broker's user CLI speaks plaintext without authentication: create the SCRAM user on
    # a plaintext start of the same storage, then restart with TLS and authentication on.
    plain = h.Broker(data)
    plain.start()
    for user, mech in [(USER, "scram512"), (USER256, "scram256")]:
        r = subprocess.run([os.environ.get("BROKER_BIN", paths.NISSHI_BIN), "user", "create", "--broker", f"tcp://{plain.address}",
                            "--mechanism", mech, user, PASSWORD], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    plain.stop()
    b = h.Broker(data, port=plain.port, cert=os.path.join(pki, "server.pem"), key=os.path.join(pki, "server.pk8"),
                 authentication=True)
    b.start()
    yield b
    b.stop()


def security_env(pki, password_file, ca="ca.pem", mechanism="SCRAM-SHA-512", user=USER):
    return {
        "SCORER__KAFKA__SECURITY__PROTOCOL": "sasl_ssl",
        "SCORER__KAFKA__SECURITY__SASL_MECHANISM": mechanism,
        "SCORER__KAFKA__SECURITY__SASL_USERNAME": user,
        "SCORER__KAFKA__SECURITY__SASL_PASSWORD_FILE": password_file,
        "SCORER__KAFKA__SECURITY__CA_FILE": os.path.join(pki, ca),
    }


def client_conf(pki, brokers):
    return {"bootstrap.servers": brokers, "security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": USER, "sasl.password": PASSWORD, "ssl.ca.location": os.path.join(pki, "ca.pem")}


def run(args, env, timeout=120):
    e = dict(os.environ)
    e.update(env)
    return subprocess.run([h.scorer_bin(), *args], capture_output=True, text=True, env=e, timeout=timeout)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256"])
def test_secured_broker_is_consumed_and_produced_to(tmp_path, broker, pki, model, mechanism):
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    user = USER if mechanism == "SCRAM-SHA-512" else USER256
    env = security_env(pki, str(pw), mechanism=mechanism, user=user)
    topic = f"secure-{mechanism[-3:]}"
    r = run(["topics", "create", "--brokers", broker.address, "--input-topic", topic, "--predictions-topic", f"{topic}-preds",
             "--dead-letter-topic", f"{topic}-dlq", "--changelog-topic", f"{topic}-changelog", "--partitions", "2"], env)
    assert r.returncode == 0, r.stderr
    rows = h.make_rows(4, 20, seed=31)
    inp = str(tmp_path / "rows.parquet")
    h.write_rows_parquet(rows, inp)
    r = run(["replay", "--input", inp, "--brokers", broker.address, "--topic", topic], env)
    assert r.returncode == 0 and r.stdout.strip() == str(len(rows)), r.stderr
    out = str(tmp_path / "out")
    cfg = h.scorer_config(str(tmp_path / "s.toml"), brokers=broker.address, topic=topic, preds=f"{topic}-preds",
                          dlq=f"{topic}-dlq", group=f"g-{topic}", model=model, out_dir=out)
    s = h.Scorer(cfg, str(tmp_path / "scorer.log"), env=env, args=["--drain"])
    rc = s.wait(180)
    assert rc == 0, s.log()[-4000:]
    expected = h.score_offline(model, h.windows_by_rules(rows))
    h.compare(h.read_output(out), expected)
    # an independent client, through TLS + SCRAM, reads the predictions topic
    from confluent_kafka import Consumer

    c = Consumer({**client_conf(pki, broker.address), "group.id": "reader", "auto.offset.reset": "earliest"})
    c.subscribe([f"{topic}-preds"])
    got = set()
    deadline = time.monotonic() + 60
    while len(got) < len(expected) and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            v = json.loads(m.value())
            got.add((v["ticker"], v["week"]))
    c.close()
    assert got == {(t, w.isoformat()) for t, w in expected}
    assert PASSWORD not in s.log()
    r = run(["run", "--config", cfg, "--print-config"], env)
    assert r.returncode == 0 and PASSWORD not in r.stdout and "sasl_password_file" in r.stdout


@pytest.mark.parametrize("case", ["wrong-password", "untrusted-certificate", "plaintext-to-tls", "plain-mechanism"])
def test_bad_credentials_fail_fast_with_a_clear_error(tmp_path, broker, pki, model, case):
    pw = tmp_path / "pw"
    pw.write_text("not-the-password" if case == "wrong-password" else PASSWORD)
    env = security_env(pki, str(pw), ca="other-ca.pem" if case == "untrusted-certificate" else "ca.pem")
    if case == "plaintext-to-tls":
        env = {"SCORER__KAFKA__SECURITY__PROTOCOL": "plaintext"}
    if case == "plain-mechanism":  # nisshi offers SCRAM only: PLAIN is refused in the handshake
        env["SCORER__KAFKA__SECURITY__SASL_MECHANISM"] = "PLAIN"
    cfg = h.scorer_config(str(tmp_path / "s.toml"), brokers=broker.address, topic="secure", preds="secure-preds",
                          dlq="secure-dlq", group="g-bad-creds", model=model, out_dir=str(tmp_path / "out"))
    t = time.monotonic()
    r = run(["run", "--config", cfg], env, timeout=90)
    took = time.monotonic() - t
    assert r.returncode != 0
    err = r.stderr
    assert "cannot connect to Kafka" in err or "cannot reach Kafka" in err, err[-3000:]
    want = {"wrong-password": "uthentication", "untrusted-certificate": "certificate", "plaintext-to-tls": "Kafka",
            "plain-mechanism": "Unsupported SASL mechanism"}[case]
    assert want in err, err[-3000:]
    assert took < 45, f"took {took:.0f} s to fail"
