"""Package discovery that pyproject.toml alone cannot express.

`fivestar` lives under the `platform/` source root, `workers` at the top level, and the shared
`templates/` and `tenants/` folders ship inside the wheel as the data packages
`fivestar._templates` and `fivestar._tenants`.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages("platform", include=["fivestar", "fivestar.*"]),
        *find_packages(".", include=["workers", "workers.*"]),
        "fivestar._templates",
        "fivestar._tenants",
    ],
)
