{{/*
Pod template of a Ray pod (head or worker group). Args: dict "ctx" $ "kind" "head"|"worker"
"group" <values of the head or of one worker group>.
*/}}
{{- define "mesh.rayPodTemplate" -}}
{{- $ := .ctx -}}
{{- $g := .group -}}
{{- $head := eq .kind "head" -}}
metadata:
  labels:
    {{- include "mesh.selectorLabels" $ | nindent 4 }}
    {{- include "mesh.rayMemberLabel" $ | nindent 4 }}
    app.kubernetes.io/component: {{ $head | ternary "ray-head" "ray-worker" }}
    {{- with $.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $.Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    runAsGroup: 1000
    fsGroup: 1000
  containers:
    - name: {{ $head | ternary "ray-head" "ray-worker" }}
      image: {{ include "mesh.image" $ }}
      imagePullPolicy: {{ $.Values.image.pullPolicy }}
      ports:
        {{- if $head }}
        - {name: gcs-server, containerPort: 6379}
        - {name: dashboard, containerPort: 8265}
        - {name: client, containerPort: 10001}
        {{- end }}
        - {name: serve, containerPort: {{ $.Values.ray.servePort }}}
        - {name: metrics, containerPort: {{ $.Values.ray.metricsPort }}}
      env:
        - {name: RAY_USAGE_STATS_ENABLED, value: "0"}
      {{- $res := deepCopy ($g.resources | default dict) }}
      {{- if gt (int ($g.gpus | default 0)) 0 }}
      {{- $limits := merge (dict "nvidia.com/gpu" (int $g.gpus)) ($res.limits | default dict) }}
      {{- $_ := set $res "limits" $limits }}
      {{- end }}
      {{- with $res }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL]}
      lifecycle:
        preStop:
          exec:
            command: ["/bin/sh", "-c", "ray stop"]
      {{- if $.Values.models.volume }}
      volumeMounts:
        - name: models
          mountPath: {{ $.Values.models.mountPath }}
          readOnly: true
      {{- end }}
  {{- if $.Values.models.volume }}
  volumes:
    - name: models
      {{- toYaml $.Values.models.volume | nindent 6 }}
  {{- end }}
  {{- with $g.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $g.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $g.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
