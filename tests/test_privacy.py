from shopml.privacy import key_fingerprint, load_key, pseudonymize


def test_same_key_same_pseudonym_and_no_raw_id(monkeypatch):
    a = pseudonymize(["alice", "bob", "alice"])
    assert a[0] == a[2] != a[1]
    assert all(len(x) == 32 and "alice" not in x for x in a)


def test_key_generated_once_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPML_KEY_FILE", str(tmp_path / "k"))
    k1 = load_key()
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    assert load_key() == k1


def test_other_key_other_pseudonym(monkeypatch):
    monkeypatch.setenv("SHOPML_KEY", "11" * 32)
    a = pseudonymize(["alice"])[0]
    f = key_fingerprint()
    monkeypatch.setenv("SHOPML_KEY", "22" * 32)
    assert pseudonymize(["alice"])[0] != a and key_fingerprint() != f
