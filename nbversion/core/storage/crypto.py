"""Passphrase encryption of backup archives: AES-256-GCM, key from scrypt.

Streamed in 1 MiB chunks so a large backup never sits in memory. Each chunk has its own
nonce (random prefix + counter) and authenticates its index and whether it is the last one,
so reordered, dropped or truncated chunks are refused, not silently restored.

File layout: MAGIC | salt (16) | nonce prefix (8) | chunk size (4) | [length (4) | sealed chunk]...
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

from ...errors import IntegrityError, UsageError

MAGIC = b"NBVENC1\n"
CHUNK = 1 << 20
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 1


def derive_key(passphrase: str, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase.encode())


def is_encrypted(path) -> bool:
    if not os.path.isfile(path):   # a folder or nothing: not an encrypted backup (the caller says what it is)
        return False
    with open(path, "rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC


def _aad(index: int, last: bool) -> bytes:
    return struct.pack(">Q?", index, last)


def encrypt_file(src, dst, passphrase: str) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not passphrase:
        raise UsageError("an encrypted backup needs a passphrase",
                         hint="set NBVERSION_BACKUP_PASSPHRASE or answer the prompt")
    salt, prefix = os.urandom(16), os.urandom(8)
    aead = AESGCM(derive_key(passphrase, salt))
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.write(MAGIC + salt + prefix + struct.pack(">I", CHUNK))
        index, chunk = 0, fin.read(CHUNK)
        while True:
            following = fin.read(CHUNK)
            last = not following
            sealed = aead.encrypt(prefix + struct.pack(">I", index), chunk, _aad(index, last))
            fout.write(struct.pack(">I", len(sealed)) + sealed)
            if last:
                break
            index, chunk = index + 1, following
        fout.flush()
        os.fsync(fout.fileno())


def decrypt_file(src, dst, passphrase: str) -> None:
    """Refuses a wrong passphrase or a damaged file before writing anything usable."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not passphrase:
        raise UsageError(f"{src} is encrypted: a passphrase is needed",
                         hint="set NBVERSION_BACKUP_PASSPHRASE or answer the prompt")
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        header = fin.read(len(MAGIC) + 28)
        if header[:len(MAGIC)] != MAGIC or len(header) < len(MAGIC) + 28:
            raise IntegrityError(f"{src} is not an nbversion encrypted backup")
        salt, prefix = header[len(MAGIC):len(MAGIC) + 16], header[len(MAGIC) + 16:len(MAGIC) + 24]
        aead = AESGCM(derive_key(passphrase, salt))
        index, last = 0, False
        while not last:
            size_bytes = fin.read(4)
            if len(size_bytes) < 4:
                raise IntegrityError(f"{src} is truncated", hint="use an intact copy of the backup")
            sealed = fin.read(struct.unpack(">I", size_bytes)[0])
            last = fin.peek(1) == b"" if hasattr(fin, "peek") else False
            try:
                fout.write(aead.decrypt(prefix + struct.pack(">I", index), sealed, _aad(index, last)))
            except InvalidTag:
                what = "wrong passphrase" if index == 0 else f"chunk {index} was altered"
                raise IntegrityError(f"cannot decrypt {Path(src).name}: {what}",
                                     hint="check the passphrase; a damaged backup cannot be restored") from None
            index += 1
