"""Valid control-plane documents, one per kind and shape, that the fuzz suites mutate.

Each one uses as many fields of its kind as the docs show (``docs/deploy.md``,
``docs/progressive-delivery.md``, ``docs/analysis.md``, ``docs/autoscaling.md``,
``docs/monitoring.md``, ``docs/triggers.md``), so a mutation can reach every parser branch.
"""

from __future__ import annotations

from typing import Any


def _deployment(name: str, strategy: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "loopline/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"team": "ml"}, "annotations": {"note": "x"}},
        "spec": {
            "model": "bc@champion",
            "replicas": 2,
            "strategy": strategy,
            "minReadySeconds": 0,
            "progressDeadlineSeconds": 600,
            "revisionHistoryLimit": 10,
            "paused": False,
            "template": {
                "workers": 1,
                "batching": {"enabled": True, "maxBatchSize": 64, "maxLatencyMs": 5},
                "logging": {"enabled": True, "sampleRate": 0.5},
            },
            **spec,
        },
    }


ROLLING = _deployment(
    "rolling",
    {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
    port=18080,
)
AUTOSCALED = _deployment(
    "autoscaled",
    {"type": "Recreate"},
    autoscaling={
        "minReplicas": 1,
        "maxReplicas": 5,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70},
                },
            },
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "in_flight_requests"},
                    "target": {"type": "AverageValue", "averageValue": "8"},
                },
            },
        ],
        "behavior": {
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "selectPolicy": "Max",
                "policies": [
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                    {"type": "Percent", "value": 100, "periodSeconds": 15},
                ],
            },
            "scaleDown": {
                "stabilizationWindowSeconds": 300,
                "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
                "tolerance": "50m",
            },
        },
    },
)
CANARY = _deployment(
    "canary",
    {
        "type": "Canary",
        "canary": {
            "steps": [
                {"setWeight": 20},
                {"pause": {"duration": "30s"}},
                {"analysis": {"templates": [{"templateName": "quality"}]}},
                {"setMirror": 50},
                {
                    "setHeaderRoute": {
                        "name": "qa",
                        "match": [{"headerName": "X-Canary", "headerValue": {"exact": "1"}}],
                    }
                },
                {"setWeight": 100},
            ],
            "analysis": {"templates": [{"templateName": "quality"}], "startingStep": 1},
            "scaleDownDelaySeconds": 30,
            "abortScaleDownDelaySeconds": 30,
        },
    },
)
BLUE_GREEN = _deployment(
    "bluegreen",
    {
        "type": "BlueGreen",
        "blueGreen": {
            "autoPromotionEnabled": False,
            "prePromotionAnalysis": {"templates": [{"templateName": "quality"}]},
            "scaleDownDelaySeconds": 30,
        },
    },
)
DEPLOYMENTS = (ROLLING, AUTOSCALED, CANARY, BLUE_GREEN)

TEMPLATE: dict[str, Any] = {
    "apiVersion": "loopline/v1",
    "kind": "AnalysisTemplate",
    "metadata": {"name": "quality"},
    "spec": {
        "metrics": [
            {
                "name": "agreement",
                "interval": "30s",
                "count": 4,
                "initialDelay": "0s",
                "successCondition": "result >= 0.95",
                "failureCondition": "result < 0.90",
                "failureLimit": 0,
                "inconclusiveLimit": 1,
                "consecutiveErrorLimit": 4,
                "consecutiveSuccessLimit": 0,
                "dryRun": False,
                "minSampleSize": 200,
                "sampleTimeout": "10m",
                "measurementRetention": 10,
                "provider": {"agreement": {}},
            },
            {
                "name": "errors",
                "successCondition": "result <= 0.01",
                "provider": {"router": {"metric": "errorRate", "revision": "canary"}},
            },
            {
                "name": "prom",
                "successCondition": "result[0] < 1",
                "provider": {
                    "prometheus": {
                        "address": "http://127.0.0.1:9090",
                        "query": "up",
                        "timeout": "5s",
                    }
                },
            },
        ]
    },
}

MONITOR: dict[str, Any] = {
    "apiVersion": "loopline/v1",
    "kind": "Monitor",
    "metadata": {"name": "bc"},
    "spec": {
        "deployment": "bc",
        "model": "bc",
        "window": {"rows": 5000},
        "reference": {"falseAlarmRate": 0.01, "chunks": 30},
        "features": ["distance", "company"],
        "label": {"task": "classification", "positiveClass": "yes"},
        "retention": {"windows": 5000},
        "rules": [
            {
                "name": "drift",
                "metric": "driftShare",
                "op": ">=",
                "threshold": 0.3,
                "forWindows": 3,
                "clearAfter": 2,
                "severity": "warning",
            },
            {"name": "distance", "metric": "feature:distance", "forWindows": 2},
            {"name": "decay", "metric": "estimated:accuracy", "op": "<", "threshold": 0.8},
        ],
    },
}


def trigger(pipeline: str) -> dict[str, Any]:
    """A valid Trigger running ``pipeline`` (an absolute path: relative ones need a file)."""
    return {
        "apiVersion": "loopline/v1",
        "kind": "Trigger",
        "metadata": {"name": "retrain"},
        "spec": {
            "model": "bc",
            "on": {"schedule": {"cron": "0 * * * *"}},
            "cooldown": "10m",
            "run": {
                "pipeline": pipeline,
                "params": {"tick": "{{tick}}", "span_range": ["{{tick}}", "x"]},
                "timeout": "1h",
            },
            "rollout": {
                "deployment": "bc",
                "alias": "champion",
                "candidateAlias": "challenger",
            },
        },
    }
