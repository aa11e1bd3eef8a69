"""kernsurf's tests: a package, so that every test imports its helpers from
tests.support (never from another test) and shares fixtures through conftest.py."""
