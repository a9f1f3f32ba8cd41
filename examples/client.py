"""Start a headless Foundry session from Python (needs the `cryptography` package).

Run: python3 examples/client.py  (values from the environment, or edit them)
"""
import base64
import json
import os
import urllib.error
import urllib.request

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

BASE_URL = os.environ.get("BASE_URL", "http://localhost:3010")
API_KEY = os.environ.get("API_KEY", "your-api-key")
FOUNDRY_URL = os.environ.get("FOUNDRY_URL", "http://localhost:30000")
USERNAME = os.environ.get("FOUNDRY_USER", "Gamemaster")
WORLD = os.environ.get("FOUNDRY_WORLD", "")
PASSWORD = os.environ.get("FOUNDRY_PASSWORD", "")


def call(method, path, headers, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE_URL + path, data=data, method=method,
                                 headers={"x-api-key": API_KEY, **headers})
    try:
        with urllib.request.urlopen(req, timeout=600) as res:
            return json.load(res)
    except urllib.error.HTTPError as err:
        raise SystemExit(f"{path}: {err.code} {err.read().decode()}")


headers = {"x-foundry-url": FOUNDRY_URL, "x-username": USERNAME}
if WORLD:
    headers["x-world-name"] = WORLD
hs = call("POST", "/session-handshake", headers)

public_key = serialization.load_pem_public_key(hs["publicKey"].encode())
# SHA-256 OAEP (SHA-1 works too).
cipher = public_key.encrypt(
    json.dumps({"password": PASSWORD, "nonce": hs["nonce"]}).encode(),
    padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
)
result = call("POST", "/start-session", {"content-type": "application/json"},
              {"handshakeToken": hs["token"], "encryptedPassword": base64.b64encode(cipher).decode()})
print(json.dumps(result))
