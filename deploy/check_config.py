#!/usr/bin/env python3
"""Offline checks of deploy/ that need no container: every YAML and JSON
file parses, the Logstash pipeline parses by Logstash's config grammar, and
the files agree with each other and with the demo (ports, paths, flags,
index names, log rotation). Run by deploy/check; prints one `ok` line per
check and exits non-zero on the first failure.

    python3 deploy/check_config.py [REPO_ROOT]
"""

import json
import posixpath
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
PIPELINE = DEPLOY / "logstash" / "pipeline" / "logstash.conf"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
OTEL = DEPLOY / "otel-collector.yaml"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources"
DASHBOARDS = DEPLOY / "grafana" / "provisioning" / "dashboards"
DEMO = ROOT / "examples" / "ha_ingestor.rs"
ENV_RS = ROOT / "observe-runtime" / "src" / "builder" / "env.rs"
INDEX_RS = ROOT / "observe-runtime" / "src" / "sink" / "elasticsearch" / "index.rs"
DEMO_SERVICE = "ha-ingestor"


class CheckError(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise CheckError(msg)


def ok(name, detail):
    print(f"ok {name}: {detail}")


# --- helpers over the compose file --------------------------------------

def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def services(compose):
    return compose["services"]


def published(service):
    """(host_port, container_port, protocol) of the short-syntax ports."""
    out = []
    for p in service.get("ports", []):
        need(isinstance(p, str), f"port {p!r}: use the quoted short syntax")
        proto = "tcp"
        if "/" in p:
            p, proto = p.split("/", 1)
        parts = p.split(":")
        out.append((int(parts[-2]) if len(parts) > 1 else None, int(parts[-1]), proto))
    return out


def container_ports(service):
    return {(c, proto) for _, c, proto in published(service)}


def bind_mounts(service):
    """(host path relative to deploy/, container path) of bind mounts."""
    out = []
    for v in service.get("volumes", []):
        need(isinstance(v, str), f"volume {v!r}: use the short syntax")
        src, dst = v.split(":")[:2]
        if src.startswith((".", "/")):
            out.append((src, dst))
    return out


def host_port(target):
    host, _, port = target.rpartition(":")
    return host, int(port)


def flag_value(command, flag):
    need(flag in command, f"{DEMO_SERVICE} command has no {flag}")
    i = command.index(flag)
    need(i + 1 < len(command), f"{flag} without a value")
    return str(command[i + 1])


# --- checks ---------------------------------------------------------------

def check_parse():
    files = sorted(
        p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml", ".json") and p.is_file()
    )
    mounted = [ROOT / "docs" / "prometheus" / "rules.yml", ROOT / "docs" / "prometheus" / "slo_rules.yml", *sorted((ROOT / "docs" / "grafana").glob("*.json"))]
    for p in files + mounted:
        try:
            if p.suffix == ".json":
                with open(p, encoding="utf-8") as f:
                    json.load(f)
            else:
                load_yaml(p)
        except (json.JSONDecodeError, yaml.YAMLError) as e:
            raise CheckError(f"{p.relative_to(ROOT)} does not parse: {e}") from e
    need(files, "no YAML or JSON files under deploy/")
    ok("parse", f"{len(files) + len(mounted)} YAML/JSON files ({', '.join(str(p.relative_to(ROOT)) for p in files + mounted)})")


def check_logging(compose):
    for name, svc in services(compose).items():
        log = svc.get("logging")
        need(log is not None, f"service {name} has no logging section")
        need(log.get("driver") == "json-file", f"service {name}: logging driver {log.get('driver')!r}, want json-file")
        opts = log.get("options", {})
        need(opts.get("max-size") == "100m", f"service {name}: max-size {opts.get('max-size')!r}, want '100m'")
        need(opts.get("max-file") == "5", f"service {name}: max-file {opts.get('max-file')!r}, want '5'")
    ok("compose logging", f"all {len(services(compose))} services use json-file, max-size 100m, max-file 5")


def check_paths(compose):
    n = 0
    for name, svc in services(compose).items():
        for src, _ in bind_mounts(svc):
            need((DEPLOY / src).exists(), f"service {name}: bind mount source {src} does not exist")
            n += 1
        build = svc.get("build")
        if build:
            ctx = DEPLOY / build["context"]
            need(ctx.is_dir(), f"service {name}: build context {build['context']} is not a directory")
            need((ctx / build["dockerfile"]).is_file(), f"service {name}: no {build['dockerfile']} in the build context")
    ok("compose paths", f"{n} bind mount sources and the build context/Dockerfile exist")


def demo_flags():
    """Long flags of the demo's Args, as clap derives them."""
    src = DEMO.read_text(encoding="utf-8")
    body = src[src.index("pub struct Args"):]
    body = body[: body.index("\n}\n")]
    flags = set()
    pending = None
    for line in body.splitlines():
        line = line.strip()
        m = re.match(r"#\[arg\((.*)\)\]", line)
        if m:
            explicit = re.search(r'long\s*=\s*"([^"]+)"', m.group(1))
            if explicit:
                pending = explicit.group(1)
            elif re.search(r"\blong\b", m.group(1)):
                pending = ""
            continue
        m = re.match(r"(?:pub\s+)?([a-z_][a-z0-9_]*)\s*:", line)
        if m and pending is not None:
            flags.add("--" + (pending or m.group(1).replace("_", "-")))
            pending = None
    need("--prometheus" in flags, f"could not read the demo's flags from {DEMO.relative_to(ROOT)}")
    return flags


def env_vars():
    """The variable names env.rs compares against, outside its tests."""
    code = ENV_RS.read_text(encoding="utf-8").split("#[cfg(test)]")[0]
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith("//"))
    return set(re.findall(r'"(OBSERVE_[A-Z0-9_]+)"', code))


def check_demo(compose):
    svc = services(compose)[DEMO_SERVICE]
    command = [str(c) for c in svc["command"]]
    flags = demo_flags()
    used = [c for c in command if c.startswith("--")]
    for flag in used:
        need(flag in flags, f"{DEMO_SERVICE}: {flag} is not a flag of {DEMO.relative_to(ROOT)} (it has {sorted(flags)})")
    known = env_vars()
    need(known, f"could not read the OBSERVE_* variables from {ENV_RS.relative_to(ROOT)}")
    for name, s in services(compose).items():
        env = s.get("environment", {})
        keys = env.keys() if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
        for k in keys:
            if k.startswith("OBSERVE_"):
                need(k in known, f"service {name}: {k} is not read by observe ({ENV_RS.relative_to(ROOT)})")
    # Every back-end flag names a compose service and a port it listens on.
    svcs = services(compose)
    ls_host, ls_port = host_port(flag_value(command, "--logstash"))
    need(ls_host in svcs, f"--logstash {ls_host}: no such service")
    influx = flag_value(command, "--influxdb")
    m = re.fullmatch(r"http://([^:/]+):(\d+)/?", influx)
    need(m and m.group(1) in svcs, f"--influxdb {influx}: not http://SERVICE:PORT of a compose service")
    need((int(m.group(2)), "tcp") in container_ports(svcs[m.group(1)]), f"--influxdb port {m.group(2)} is not a port of {m.group(1)}")
    db = flag_value(command, "--influx-db")
    need(svcs[m.group(1)].get("environment", {}).get("INFLUXDB_DB") == db, f"influxdb does not create the database {db} (INFLUXDB_DB)")
    _, admin_port = host_port(flag_value(command, "--prometheus"))
    need((admin_port, "tcp") in container_ports(svc), f"{DEMO_SERVICE} does not publish its admin port {admin_port}")
    ok("demo wiring", f"flags {' '.join(used)} exist in the demo; back-ends are compose services on their ports; OBSERVE_* names (if any) are known")
    return ls_host, ls_port, admin_port


# --- Logstash config grammar ---------------------------------------------

class LogstashParser:
    """A recursive-descent parser for Logstash's pipeline config grammar
    (plugin sections, plugins, attributes, values, if/else if/else with
    conditions). It checks the syntax only: plugin names and options are
    not known to it."""

    def __init__(self, text):
        self.s = text
        self.i = 0

    def fail(self, what):
        line = self.s.count("\n", 0, self.i) + 1
        col = self.i - (self.s.rfind("\n", 0, self.i) + 1) + 1
        raise CheckError(f"{PIPELINE.relative_to(ROOT)}:{line}:{col}: expected {what}, found {self.s[self.i:self.i + 20]!r}")

    def ws(self):
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r\n":
                self.i += 1
            elif c == "#":
                while self.i < len(self.s) and self.s[self.i] != "\n":
                    self.i += 1
            else:
                break

    def peek(self, lit):
        return self.s.startswith(lit, self.i)

    def eat(self, lit):
        self.ws()
        if not self.peek(lit):
            self.fail(repr(lit))
        self.i += len(lit)

    def word(self):
        self.ws()
        m = re.compile(r"[A-Za-z0-9_-]+").match(self.s, self.i)
        if not m:
            self.fail("a name")
        self.i = m.end()
        return m.group(0)

    def keyword(self, kw):
        self.ws()
        m = re.compile(re.escape(kw) + r"(?![A-Za-z0-9_-])").match(self.s, self.i)
        return m is not None

    def string(self):
        self.ws()
        q = self.s[self.i] if self.i < len(self.s) else ""
        if q not in "\"'":
            self.fail("a string")
        j = self.i + 1
        while j < len(self.s) and self.s[j] != q:
            j += 2 if self.s[j] == "\\" else 1
        if j >= len(self.s):
            self.fail("the end of the string")
        value = self.s[self.i + 1:j]
        self.i = j + 1
        return value

    def config(self):
        sections = []
        self.ws()
        while self.i < len(self.s):
            kind = self.word()
            if kind not in ("input", "filter", "output"):
                self.i -= len(kind)
                self.fail("input, filter or output")
            self.eat("{")
            sections.append((kind, self.block()))
            self.ws()
        if not sections:
            self.fail("a plugin section")
        return sections

    def block(self):
        """Plugins and branches up to the closing brace."""
        items = []
        while True:
            self.ws()
            if self.peek("}"):
                self.i += 1
                return items
            if self.i >= len(self.s):
                self.fail("'}'")
            if self.keyword("if"):
                items.append(self.branch())
            else:
                items.append(self.plugin())

    def plugin(self):
        self.ws()
        name = self.string() if self.peek('"') or self.peek("'") else self.word()
        self.eat("{")
        attrs = {}
        while True:
            self.ws()
            if self.peek("}"):
                self.i += 1
                return ("plugin", name, attrs)
            key = self.string() if self.peek('"') or self.peek("'") else self.word()
            self.eat("=>")
            attrs[key] = self.value()

    def value(self):
        self.ws()
        if self.peek('"') or self.peek("'"):
            return self.string()
        if self.peek("["):
            self.i += 1
            items = []
            self.ws()
            if self.peek("]"):
                self.i += 1
                return items
            while True:
                items.append(self.value())
                self.ws()
                if self.peek(","):
                    self.i += 1
                    continue
                self.eat("]")
                return items
        if self.peek("{"):
            self.i += 1
            entries = {}
            while True:
                self.ws()
                if self.peek("}"):
                    self.i += 1
                    return entries
                key = self.string() if self.peek('"') or self.peek("'") else self.word()
                self.eat("=>")
                entries[key] = self.value()
        m = re.compile(r"-?[0-9]+(\.[0-9]*)?").match(self.s, self.i)
        if m:
            self.i = m.end()
            return float(m.group(0)) if m.group(1) else int(m.group(0))
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]+").match(self.s, self.i)
        if m:
            self.i = m.end()
            self.ws()
            if self.peek("{"):  # a codec written as a plugin
                self.i = m.start()
                return self.plugin()
            return m.group(0)
        self.fail("a value")

    def branch(self):
        self.eat("if")
        self.condition()
        self.eat("{")
        arms = [self.block()]
        while True:
            self.ws()
            if not self.keyword("else"):
                return ("branch", arms)
            self.eat("else")
            if self.keyword("if"):
                self.eat("if")
                self.condition()
            self.eat("{")
            arms.append(self.block())

    def condition(self):
        self.expression()
        while True:
            self.ws()
            for op in ("and", "or", "xor", "nand"):
                if self.keyword(op):
                    self.i += len(op)
                    self.expression()
                    break
            else:
                return

    def expression(self):
        self.ws()
        if self.peek("("):
            self.i += 1
            self.condition()
            self.eat(")")
            return
        if self.peek("!") and not self.peek("!="):
            self.i += 1
            self.ws()
            if self.peek("("):
                self.i += 1
                self.condition()
                self.eat(")")
            else:
                self.selector()
            return
        self.rvalue()
        self.ws()
        for op in ("==", "!=", "<=", ">=", "=~", "!~", "<", ">"):
            if self.peek(op):
                self.i += len(op)
                self.ws()
                if op in ("=~", "!~"):
                    self.regexp() if self.peek("/") else self.string()
                else:
                    self.rvalue()
                return
        if self.keyword("not"):
            self.i += 3
            self.eat("in")
            self.rvalue()
        elif self.keyword("in"):
            self.i += 2
            self.rvalue()

    def selector(self):
        self.ws()
        m = re.compile(r"(\[[^\]\[,]+\])+").match(self.s, self.i)
        if not m:
            self.fail("a field reference like [field][sub]")
        self.i = m.end()

    def regexp(self):
        j = self.i + 1
        while j < len(self.s) and self.s[j] != "/":
            j += 2 if self.s[j] == "\\" else 1
        if j >= len(self.s):
            self.fail("the end of the regexp")
        self.i = j + 1

    def rvalue(self):
        self.ws()
        if self.peek('"') or self.peek("'"):
            self.string()
        elif self.peek("/"):
            self.regexp()
        elif re.compile(r"\[[^\]\[,\"']").match(self.s, self.i):
            self.selector()
        elif self.peek("["):
            self.value()
        else:
            m = re.compile(r"-?[0-9]+(\.[0-9]*)?").match(self.s, self.i)
            if not m:
                self.fail("a field reference, string, number, array or regexp")
            self.i = m.end()


def plugins(items):
    for item in items:
        if item[0] == "plugin":
            yield item
        else:
            for arm in item[1]:
                yield from plugins(arm)


def check_logstash(compose, ls_host, ls_port):
    sections = LogstashParser(PIPELINE.read_text(encoding="utf-8")).config()
    by_kind = {}
    for kind, items in sections:
        by_kind.setdefault(kind, []).extend(plugins(items))
    need(by_kind.get("input") and by_kind.get("output"), "the pipeline needs an input and an output section")
    tcp = [attrs for _, name, attrs in by_kind["input"] if name == "tcp"]
    need(len(tcp) == 1, "the pipeline needs exactly one tcp input")
    port, codec = tcp[0].get("port"), tcp[0].get("codec")
    need(codec == "json_lines", f"tcp input codec {codec!r}, want json_lines (the TCP sink writes one JSON document per line)")
    need(port == ls_port, f"tcp input port {port}, but the demo ships to {ls_host}:{ls_port}")
    svcs = services(compose)
    need(ls_host == "logstash" and "logstash" in svcs, "the demo's --logstash host is not the logstash service")
    need((port, "tcp") in container_ports(svcs["logstash"]), f"the logstash service does not publish {port}/tcp")
    mounted = [dst for src, dst in bind_mounts(svcs["logstash"]) if (DEPLOY / src).resolve() == PIPELINE.parent.resolve()]
    need(mounted == ["/usr/share/logstash/pipeline"], "deploy/logstash/pipeline is not mounted at /usr/share/logstash/pipeline")
    es = [attrs for _, name, attrs in by_kind["output"] if name == "elasticsearch"]
    need(len(es) == 1, "the pipeline needs exactly one elasticsearch output")
    for h in es[0].get("hosts", []):
        m = re.fullmatch(r"https?://([^:/]+):(\d+)/?", h)
        need(m and m.group(1) in svcs, f"elasticsearch output host {h}: not a compose service")
        need((int(m.group(2)), "tcp") in container_ports(svcs[m.group(1)]), f"elasticsearch output {h}: port not published by {m.group(1)}")
    # The index pattern, translated to the sink's syntax, is the sink's default.
    sink = re.search(r'DEFAULT_INDEX_PATTERN: &str = "([^"]+)"', INDEX_RS.read_text(encoding="utf-8"))
    need(sink, f"no DEFAULT_INDEX_PATTERN in {INDEX_RS.relative_to(ROOT)}")
    index = es[0].get("index", "")
    as_sink = re.sub(r"%\{\[@metadata\]\[index_service\]\}|%\{\[?service\]?\}", "{service}", index)
    as_sink = as_sink.replace("%{+YYYY.MM.dd}", "%Y.%m.%d")
    need(as_sink == sink.group(1), f"index {index!r} is not the sink's {sink.group(1)!r}")
    ok("logstash pipeline", f"parses (Logstash config grammar, {sum(len(v) for v in by_kind.values())} plugins); tcp {port} json_lines = the demo's --logstash {ls_host}:{ls_port} = a published port; index {index} = the sink's {sink.group(1)}")


def check_prometheus(compose, admin_port):
    svcs = services(compose)
    prom = svcs["prometheus"]
    cmd = [str(c) for c in prom["command"]]
    need("--enable-feature=exemplar-storage" in cmd, "prometheus runs without --enable-feature=exemplar-storage")
    config_file = next((c.split("=", 1)[1] for c in cmd if c.startswith("--config.file=")), None)
    mounts = {dst: (DEPLOY / src).resolve() for src, dst in bind_mounts(prom)}
    need(mounts.get(config_file) == PROMETHEUS.resolve(), f"--config.file {config_file} is not deploy/prometheus/prometheus.yml")
    config = load_yaml(PROMETHEUS)
    # Each rule file, resolved as Prometheus does (relative to the config
    # file) inside the container, is a mounted file of the repository.
    for rule in config.get("rule_files", []):
        inside_norm = Path(posixpath.normpath(posixpath.join(posixpath.dirname(config_file), rule)))
        host = None
        for dst, src in mounts.items():
            try:
                rel = inside_norm.relative_to(dst)
            except ValueError:
                continue
            host = src.joinpath(rel) if str(rel) != "." else src
        need(host is not None and host.is_file(), f"rule file {rule} resolves to {inside_norm} in the container, which no mount provides")
        need(host == (PROMETHEUS.parent / rule).resolve(), f"rule file {rule}: the container and the repository see different files")
    targets = [t for job in config["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]]
    demo_jobs = [job for job in config["scrape_configs"] if any(t.startswith(f"{DEMO_SERVICE}:") for sc in job.get("static_configs", []) for t in sc["targets"])]
    need(demo_jobs, f"no scrape job targets {DEMO_SERVICE}")
    need(all(job.get("honor_labels") for job in demo_jobs), f"the {DEMO_SERVICE} job must keep the series' own service label (honor_labels: true)")
    for t in targets:
        host, port = host_port(t)
        if host == "localhost":
            continue
        need(host in svcs, f"scrape target {t}: no such service")
        if host == DEMO_SERVICE:
            need(port == admin_port, f"scrape target {t}, but the demo's admin listener is on {admin_port}")
    ok("prometheus wiring", f"config and rules mounted as in the repository; targets {', '.join(targets)} are compose services, {DEMO_SERVICE}:{admin_port} is the demo's --prometheus; exemplar storage on")


def check_grafana(compose):
    svcs = services(compose)
    graf = svcs["grafana"]
    mounts = {dst: (DEPLOY / src).resolve() for src, dst in bind_mounts(graf)}
    need(mounts.get("/etc/grafana/provisioning/datasources") == DATASOURCES.resolve(), "datasources provisioning is not mounted")
    need(mounts.get("/etc/grafana/provisioning/dashboards") == DASHBOARDS.resolve(), "dashboards provisioning is not mounted")
    n = 0
    for f in sorted(DATASOURCES.glob("*.yml")):
        doc = load_yaml(f)
        need(doc.get("apiVersion") == 1, f"{f.name}: apiVersion must be 1")
        defaults = [d for d in doc["datasources"] if d.get("isDefault")]
        need(len(defaults) <= 1, f"{f.name}: more than one default data source")
        for d in doc["datasources"]:
            for key in ("name", "type", "url"):
                need(d.get(key), f"{f.name}: a data source without {key}")
            m = re.fullmatch(r"https?://([^:/]+):(\d+)/?", d["url"])
            need(m and m.group(1) in svcs, f"{f.name}: {d['name']} url {d['url']} is not a compose service")
            need((int(m.group(2)), "tcp") in container_ports(svcs[m.group(1)]), f"{f.name}: {d['name']} port {m.group(2)} is not a port of {m.group(1)}")
            n += 1
    need(any(d.get("type") == "prometheus" for f in DATASOURCES.glob("*.yml") for d in load_yaml(f)["datasources"]), "no Prometheus data source (the dashboard needs one)")
    dashboards = 0
    for f in sorted(DASHBOARDS.glob("*.yml")):
        doc = load_yaml(f)
        need(doc.get("apiVersion") == 1, f"{f.name}: apiVersion must be 1")
        for p in doc["providers"]:
            path = p["options"]["path"]
            need(path in mounts and mounts[path].is_dir(), f"{f.name}: provider path {path} is not a mounted directory")
            found = list(mounts[path].glob("*.json"))
            need(found, f"{f.name}: no dashboard JSON in {mounts[path]}")
            for j in found:
                need(json.loads(j.read_text(encoding="utf-8")).get("uid"), f"{j.name}: a provisioned dashboard needs a uid")
            dashboards += len(found)
    ok("grafana provisioning", f"{n} data sources point at compose services; {dashboards} dashboard(s) from docs/grafana mounted where the provider reads")


def check_otel(compose):
    svcs = services(compose)
    otel = svcs["otel-collector"]
    mounts = {dst: (DEPLOY / src).resolve() for src, dst in bind_mounts(otel)}
    cmd = " ".join(str(c) for c in otel.get("command", []))
    m = re.search(r"--config=(\S+)", cmd)
    need(m and mounts.get(m.group(1)) == OTEL.resolve(), "the collector's --config is not deploy/otel-collector.yaml")
    conf = load_yaml(OTEL)
    for kind in ("receivers", "processors", "exporters"):
        need(isinstance(conf.get(kind), dict), f"otel-collector.yaml: no {kind}")
    pipelines = conf["service"]["pipelines"]
    need(pipelines, "otel-collector.yaml: no pipelines")
    for pname, p in pipelines.items():
        need(pname.split("/")[0] in ("metrics", "traces", "logs"), f"pipeline {pname}: unknown signal")
        for kind in ("receivers", "processors", "exporters"):
            for comp in p.get(kind, []):
                need(comp in conf[kind], f"pipeline {pname} uses {kind[:-1]} {comp}, which is not defined")
        need(p.get("receivers") and p.get("exporters"), f"pipeline {pname} needs receivers and exporters")
    http = conf["receivers"]["otlp"]["protocols"]["http"]
    _, port = host_port(http["endpoint"])
    need(port == 4318, f"OTLP/HTTP endpoint on {port}, want 4318")
    need((4318, "tcp") in container_ports(otel), "otel-collector does not publish 4318")
    _, prom_port = host_port(conf["exporters"]["prometheus"]["endpoint"])
    scraped = [t for job in load_yaml(PROMETHEUS)["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]]
    need(f"otel-collector:{prom_port}" in scraped, f"Prometheus does not scrape the collector's exporter on {prom_port}")
    ok("otel-collector", f"pipelines {', '.join(pipelines)} use defined components; OTLP/HTTP on 4318 published; exporter :{prom_port} scraped")


def check_images(compose):
    svcs = services(compose)
    tags = {n: svcs[n]["image"].rsplit(":", 1)[1] for n in ("elasticsearch", "logstash", "kibana")}
    need(len(set(tags.values())) == 1, f"Elasticsearch, Logstash and Kibana must share a version: {tags}")
    need(tags["kibana"].startswith("8.11"), f"Elastic stack {tags['kibana']}, want 8.11")
    for name, svc in svcs.items():
        image = svc.get("image", "")
        need(svc.get("build") or (":" in image and not image.endswith(":latest")), f"service {name}: pin the image version ({image!r})")
    ok("compose images", f"every image pinned; Elastic stack {tags['kibana']} throughout")


def main():
    try:
        check_parse()
        compose = load_yaml(COMPOSE)
        check_logging(compose)
        check_paths(compose)
        check_images(compose)
        ls_host, ls_port, admin_port = check_demo(compose)
        check_logstash(compose, ls_host, ls_port)
        check_prometheus(compose, admin_port)
        check_grafana(compose)
        check_otel(compose)
    except CheckError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    except (KeyError, TypeError, ValueError, IndexError) as e:
        print(f"FAIL: unexpected shape in deploy/ ({type(e).__name__}: {e})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
