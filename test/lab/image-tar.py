#!/usr/bin/env python3
"""Builds a docker-archive image tar (what `docker save` writes, `ctr images import` reads) with no
registry: image-tar.py OUT.tar REPO:TAG ENTRYPOINT FILE=/PATH/IN/IMAGE [...]"""
import hashlib, io, json, sys, tarfile, time

out, ref, entry, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
    dirs = set()
    for spec in files:
        src, dst = spec.split("=", 1)
        parts = dst.strip("/").split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.add(d); ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; ti.mtime = 0; t.addfile(ti)
        ti = t.gettarinfo(src, dst.strip("/")); ti.uid = ti.gid = 0; ti.uname = ti.gname = ""; ti.mtime = 0; ti.mode = 0o755
        with open(src, "rb") as f: t.addfile(ti, f)
    for d in ("tmp", "var", "etc"):
        if d not in dirs:
            ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o1777 if d == "tmp" else 0o755; t.addfile(ti)
data = layer.getvalue()
diff = "sha256:" + hashlib.sha256(data).hexdigest()
cfg = json.dumps({"architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
    "config": {"Entrypoint": [entry], "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
    "rootfs": {"type": "layers", "diff_ids": [diff]}, "history": [{"created_by": "kes-lab image-tar.py"}]}).encode()
cid = hashlib.sha256(cfg).hexdigest()
with tarfile.open(out, "w") as t:
    def add(name, b):
        ti = tarfile.TarInfo(name); ti.size = len(b); ti.mtime = int(time.time()); t.addfile(ti, io.BytesIO(b))
    add(cid + ".json", cfg)
    add("layer.tar", data)
    add("manifest.json", json.dumps([{"Config": cid + ".json", "RepoTags": [ref], "Layers": ["layer.tar"]}]).encode())
print(out, ref, len(data), "bytes")
