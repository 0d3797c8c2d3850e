"""openbao-platform: one `pulumi up` to a highly available OpenBao on Kubernetes.

Thin on purpose: load and validate settings (fails before any resource exists), build the
platform, export what clients need. The unseal key is never exported.
"""

from openbao_platform.platform import RESOURCE_NAME, OpenBaoPlatform, OpenBaoPlatformArgs, resource_options
from openbao_platform.settings import load_settings

import pulumi

settings = load_settings()
platform = OpenBaoPlatform(RESOURCE_NAME, OpenBaoPlatformArgs(settings=settings), opts=resource_options(settings))

pulumi.export("api_url", platform.api_url)
pulumi.export("ca_cert_pem", platform.ca_cert_pem)
pulumi.export("namespace", platform.namespace)
pulumi.export("service_names", platform.service_names)
if platform.admin_password is not None:
    pulumi.export("admin_password", platform.admin_password)
