"""What the real engine and pulumi-kubernetes do to our objects on `up`, `destroy` and renames.

Mocks hide all of this, so every decision here is taken from the provider or engine source
and cited (pulumi/pulumi at 1b59498, pulumi/pulumi-kubernetes at 94977969d):

* Protection. The engine refuses to replace a resource that is protected in both the old and
  the new state (pkg/resource/deploy/step_generator.go: "unable to replace resource ... as it is
  currently marked for protection"; a preview reports the error, an update bails before any
  step) and refuses to delete one (pkg/resource/deploy/step.go ``deleteProtectedError``).
  ``retain_on_delete`` removes a resource from state without deleting it from the cluster.
* Awaits (provider/pkg/await/awaiters.go): StatefulSet create/update waits for every replica
  Ready (10 min default; with OnDelete and generation > 1 it skips the revision check,
  statefulset.go); Service waits until no endpoint address is NotReady (service.go, 10 min);
  Ingress waits for ``status.loadBalancer.ingress`` and backend endpoints (ingress.go, 10 min);
  PVC waits for Bound, or Pending under WaitForFirstConsumer (5 min); Secret, ConfigMap, RBAC,
  NetworkPolicy, PDB, CronJob and custom resources do not wait unless PULUMI_K8S_AWAIT_ALL=true
  (provider/pkg/metadata/overrides.go ``ReadyCondition``). A Job waits until it completes and
  fails when it fails (job.go, 10 min default). ``pulumi.com/skipAwait: "true"``
  turns the wait off (overrides.go ``SkipAwaitLogic``); ``customTimeouts`` replace the default.
* Deletion propagation is Foreground unless ``pulumi.com/deletionPropagationPolicy`` says
  otherwise (overrides.go ``DeletionPropagation``, read from the inputs in state,
  await.go Deletion): with ``orphan`` a StatefulSet deletion leaves its pods running, and the
  re-created StatefulSet adopts them (same selector), so a replacement never takes every voter
  down at once.
"""

from __future__ import annotations

from typing import Optional, Sequence

import pulumi

#: The provider's annotation that turns its readiness wait off for one object.
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}
#: Delete the StatefulSet object only; its pods (and their volumes) keep serving.
ORPHAN_ON_DELETE = {"pulumi.com/deletionPropagationPolicy": "orphan"}

#: The StatefulSet's wait for every replica Ready. The provider's 10 minutes are too short for a
#: real first bring-up: 5 pods across 3 zones, each waiting for a zonal volume to be provisioned
#: (WaitForFirstConsumer), often for the cluster autoscaler to add a node, and for the image
#: pull; the bootstrap node then waits for every peer to answer before self-initialising.
STATEFULSET_TIMEOUTS = pulumi.CustomTimeouts(create="30m", update="30m", delete="10m")

#: Why each kind we create waits, or does not, on `pulumi up` (tests and the docs read this).
AWAIT_DECISIONS: dict[str, str] = {
    "StatefulSet": "waits for every replica Ready (custom timeouts 30m create/update): that is how "
                   "`pulumi up` tells the user the cluster serves",
    "Service": "skipAwait: the StatefulSet await already proves pod readiness; the Service wait "
               "fails after 10 minutes while any pod is NotReady, which a correct slow bring-up or "
               "an OnDelete rollout produces",
    "Ingress": "skipAwait: status.loadBalancer is published only when the controller runs with "
               "--publish-service; backends are proven by the StatefulSet await",
    "HTTPRoute": "skipAwait: status is per parent Gateway and depends on its controller; no wait "
                 "even with PULUMI_K8S_AWAIT_ALL=true",
    "BackendTLSPolicy": "skipAwait: status depends on the Gateway controller",
    "ServiceMonitor": "skipAwait: the Prometheus Operator publishes no readiness",
    "PrometheusRule": "skipAwait: the Prometheus Operator publishes no readiness",
    "PersistentVolumeClaim": "waits for Bound (Pending accepted under WaitForFirstConsumer), 5 minutes: "
                             "a backup volume that cannot bind must fail the update",
    "Namespace": "no await on create; deletion is retained when protected",
    "Secret": "no await (only service-account-token Secrets wait)",
    "ConfigMap": "no await",
    "ServiceAccount": "no await on Kubernetes >= 1.24",
    "Role": "no await", "RoleBinding": "no await", "ClusterRoleBinding": "no await",
    "NetworkPolicy": "no await", "PodDisruptionBudget": "no await", "CronJob": "no await",
    "Job": "waits until Complete, fails on Failed with the pod's messages (provider/pkg/await/job.go; custom "
           "timeouts 10m): that is how `pulumi up` reports the reconciler's own error (FallbackToLogsOnError); "
           "its name carries the desired state's hash, so a change is a new Job created before the old one goes",
}


def stateful(parent: pulumi.Resource, protect: bool, retain: bool = False,
             depends_on: Optional[Sequence[pulumi.Resource]] = None,
             custom_timeouts: Optional[pulumi.CustomTimeouts] = None) -> pulumi.ResourceOptions:
    """Options for a resource whose loss loses data or trust.

    ``protect`` makes the engine refuse any replacement or deletion of it; ``retain`` (only
    together with ``protect``) keeps it in the cluster when it does leave the stack, e.g.
    ``pulumi destroy`` after ``pulumi state unprotect`` (docs/decommission.md). A stack with
    protection off (dev) tears down completely.
    """
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect and retain,
                                  depends_on=list(depends_on) if depends_on else None,
                                  custom_timeouts=custom_timeouts)
