"""`python -m sluice ARGS`: runs the sluice binary this package installed."""

import os
import sys
import sysconfig


def find_sluice_bin() -> str:
    """The `sluice` executable pip installed beside this environment's Python."""
    exe = "sluice" + (sysconfig.get_config_var("EXE") or "")
    # The scripts folder of this environment, then of a `pip install --user`,
    # then the folder of the running Python (a venv's bin/).
    places = [sysconfig.get_path("scripts")]
    user = sysconfig.get_preferred_scheme("user") if hasattr(sysconfig, "get_preferred_scheme") else None
    if user:
        places.append(sysconfig.get_path("scripts", scheme=user))
    places.append(os.path.dirname(sys.executable))
    for place in places:
        path = os.path.join(place, exe)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"no {exe} in {', '.join(places)}: is sluice installed in this environment?")


def main() -> None:
    sluice = find_sluice_bin()
    if sys.platform == "win32":
        import subprocess

        sys.exit(subprocess.call([sluice, *sys.argv[1:]]))
    os.execv(sluice, [sluice, *sys.argv[1:]])


if __name__ == "__main__":
    main()
