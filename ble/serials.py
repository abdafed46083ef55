"""Lockbox serial numbers as people type them: one canonical form for every comparison."""


def normalize_serial(serial: str) -> str:
    """Upper case, no whitespace: "lb 100234" on a keypad, "LB100234" on the label.

    Compare serials only through this: what a lockbox signs (`aud`, a record's `serial`)
    stays as it was written, and each side is normalised when compared.
    """
    return "".join(serial.split()).upper()


def same_serial(a: str, b: str) -> bool:
    return normalize_serial(a) == normalize_serial(b)
