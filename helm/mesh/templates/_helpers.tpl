{{/* Names ------------------------------------------------------------------------------- */}}

{{- define "mesh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Object name prefix. Kept to 40 characters: KubeRay derives longer names from the RayService's
(<name>-raycluster-<hash>-head-svc, worker pod names), which must stay within 63.
*/}}
{{- define "mesh.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mesh.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 }}
{{ include "mesh.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
mesh-role: {{ .Values.role }}
{{- end -}}

{{- define "mesh.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mesh.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Pods that are members of this release's Ray cluster (Ray pods and the drivers). */}}
{{- define "mesh.rayMemberLabel" -}}
mesh-ray-member: {{ include "mesh.fullname" . | quote }}
{{- end -}}

{{- define "mesh.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "mesh.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mesh.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The gRPC front of this role: "orchestrator" (hub) or "node". */}}
{{- define "mesh.front" -}}
{{- if eq .Values.role "hub" }}orchestrator{{ else }}node{{ end -}}
{{- end -}}

{{/* The RayService's stable head Service (KubeRay names it <rayservice>-head-svc). */}}
{{- define "mesh.rayHeadService" -}}
{{- printf "%s-head-svc" (include "mesh.fullname" .) -}}
{{- end -}}

{{- define "mesh.rayAuthSecret" -}}
{{- default (printf "%s-ray-auth" (include "mesh.fullname" .)) .Values.ray.auth.existingSecret -}}
{{- end -}}

{{- define "mesh.tlsSecret" -}}
{{- default (printf "%s-tls" (include "mesh.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{- define "mesh.stateClaim" -}}
{{- default (printf "%s-state" (include "mesh.fullname" .)) .Values.persistence.existingClaim -}}
{{- end -}}

{{/* Where things live inside the pods. */}}
{{- define "mesh.configDir" -}}/etc/mesh/config{{- end -}}
{{- define "mesh.inlineManifestDir" -}}/etc/mesh/experts{{- end -}}
{{- define "mesh.tlsDir" -}}/etc/mesh/tls{{- end -}}
{{- define "mesh.keyDir" -}}/etc/mesh/keys{{- end -}}
{{- define "mesh.stateDir" -}}/var/lib/mesh{{- end -}}

{{/* Experts ------------------------------------------------------------------------------ */}}

{{/*
Serve's ray_actor_options for a manifest `resources` block, mapped exactly as
mesh/serving/apps.py actor_options does; fields left out take mesh/config.py's defaults.
*/}}
{{- define "mesh.actorOptions" -}}
{{- $r := . | default dict -}}
{{- $opts := dict "num_cpus" (hasKey $r "num_cpus" | ternary (get $r "num_cpus") 1.0) "num_gpus" (hasKey $r "num_gpus" | ternary (get $r "num_gpus") 0.0) -}}
{{- if get $r "memory_mb" -}}
{{- $_ := set $opts "memory" (mul (int64 (get $r "memory_mb")) 1048576) -}}
{{- end -}}
{{- if get $r "accelerator_type" -}}
{{- $_ := set $opts "accelerator_type" (get $r "accelerator_type") -}}
{{- end -}}
{{- toJson $opts -}}
{{- end -}}

{{/* Serve's autoscaling_config for a manifest `autoscaling` block (apps.py autoscaling_config). */}}
{{- define "mesh.autoscalingConfig" -}}
{{- $a := . | default dict -}}
{{- $cfg := dict "min_replicas" 1 "max_replicas" 1 "target_ongoing_requests" 2.0 "upscale_delay_s" 30.0 "downscale_delay_s" 600.0 -}}
{{- range $k := list "min_replicas" "max_replicas" "target_ongoing_requests" "upscale_delay_s" "downscale_delay_s" -}}
{{- if hasKey $a $k -}}{{- $_ := set $cfg $k (get $a $k) -}}{{- end -}}
{{- end -}}
{{- if and (hasKey $a "initial_replicas") (ne (toString (get $a "initial_replicas")) "<nil>") -}}
{{- $_ := set $cfg "initial_replicas" (get $a "initial_replicas") -}}
{{- end -}}
{{- toJson $cfg -}}
{{- end -}}

{{/*
The `deployments:` override of one expert's Serve application, or nothing. Values' blocks
replace the manifest's blocks; an inline manifest's own blocks are rendered too, so the Serve
config always shows what runs. A manifest file's blocks are read by the builder (not known here).
*/}}
{{- define "mesh.deploymentOverride" -}}
{{- $e := . -}}
{{- $m := $e.manifest | default dict -}}
{{- $d := dict "name" $e.name -}}
{{- $res := $e.resources | default (get $m "resources") -}}
{{- $auto := $e.autoscaling | default (get $m "autoscaling") -}}
{{- $mor := $e.max_ongoing_requests | default (get $m "max_ongoing_requests") -}}
{{- if or $e.resources $e.manifest -}}
{{- $_ := set $d "ray_actor_options" (include "mesh.actorOptions" $res | fromJson) -}}
{{- end -}}
{{- if or $e.autoscaling $e.manifest -}}
{{- $_ := set $d "autoscaling_config" (include "mesh.autoscalingConfig" $auto | fromJson) -}}
{{- end -}}
{{- if or $e.max_ongoing_requests $e.manifest -}}
{{- $_ := set $d "max_ongoing_requests" ($mor | default 8) -}}
{{- end -}}
{{- if gt (len $d) 1 -}}{{- toJson $d -}}{{- end -}}
{{- end -}}

{{/* An expert version's identity and Serve application name: name@version (mesh.types.expert_key). */}}
{{- define "mesh.expertKey" -}}
{{- printf "%s@%s" .name (toString (.version | default (get (.manifest | default dict) "version") | default "1.0.0")) -}}
{{- end -}}

{{/* The RayService's serveConfigV2: one application per expert version, built by mesh's builder. */}}
{{- define "mesh.serveConfig" -}}
{{- $apps := list -}}
{{- range .Values.experts -}}
{{- $args := dict -}}
{{- if .manifestFile -}}
{{- $_ := set $args "manifest" .manifestFile -}}
{{- else -}}
{{- $_ := set $args "manifest" .manifest -}}
{{- end -}}
{{- $app := dict "name" (include "mesh.expertKey" .) "import_path" "mesh.serving.builder:build_expert_app" "route_prefix" nil "args" $args -}}
{{- $override := include "mesh.deploymentOverride" . -}}
{{- if $override -}}
{{- $_ := set $app "deployments" (list ($override | fromJson)) -}}
{{- end -}}
{{- $apps = append $apps $app -}}
{{- end -}}
{{- $http := dict "host" "0.0.0.0" "port" .Values.ray.servePort -}}
{{- toYaml (dict "proxy_location" "EveryNode" "http_options" $http "applications" $apps) -}}
{{- end -}}

{{/* The mesh config (mesh/config.py MeshConfig) the orchestrator or node server loads. */}}
{{- define "mesh.meshConfig" -}}
{{- $experts := list -}}
{{- $inline := false -}}
{{- range .Values.experts -}}
{{- if .manifestFile -}}{{- $experts = append $experts .manifestFile -}}{{- else -}}{{- $inline = true -}}{{- end -}}
{{- end -}}
{{- if $inline -}}{{- $experts = append $experts (include "mesh.inlineManifestDir" .) -}}{{- end -}}
{{- $front := get .Values (include "mesh.front" .) -}}
{{- $orch := merge (dict "host" "0.0.0.0" "port" $front.port "grace_s" $front.graceSeconds) (.Values.orchestrator.settings | default dict) -}}
{{- $_ := set $orch "host" "0.0.0.0" -}}
{{- $_ := set $orch "port" $front.port -}}
{{- /* The orchestrator's /metrics: the port the ServiceMonitor and the container expose. */ -}}
{{- $_ := set $orch "metrics_port" (int .Values.serviceMonitor.meshMetricsPort) -}}
{{- $ray := dict "address" (printf "%s:6379" (include "mesh.rayHeadService" .)) "namespace" "mesh" -}}
{{- $cfg := dict "experts" $experts "state_dir" (include "mesh.stateDir" .) "orchestrator" $orch "ray" $ray -}}
{{- if .Values.orchestrator.router -}}{{- $_ := set $cfg "router" .Values.orchestrator.router -}}{{- end -}}
{{- if .Values.orchestrator.auth -}}{{- $_ := set $cfg "auth" .Values.orchestrator.auth -}}{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* Checks the schema cannot express; each says what is wrong and how to fix it. */}}
{{- define "mesh.validate" -}}
{{- $seen := dict -}}
{{- $gpuGroup := false -}}
{{- range .Values.ray.workerGroups -}}
{{- if gt (int .gpus) 0 -}}{{- $gpuGroup = true -}}{{- end -}}
{{- if or (gt (int .minReplicas) (int .replicas)) (gt (int .replicas) (int .maxReplicas)) -}}
{{- fail (printf "ray.workerGroups '%s': need minReplicas (%v) <= replicas (%v) <= maxReplicas (%v); adjust them" .name .minReplicas .replicas .maxReplicas) -}}
{{- end -}}
{{- end -}}
{{- range .Values.experts -}}
{{- $key := include "mesh.expertKey" . -}}
{{- if hasKey $seen $key -}}
{{- fail (printf "experts: '%s' is listed twice; each expert version is one Serve application, so name and version together must be unique" $key) -}}
{{- end -}}
{{- $_ := set $seen $key true -}}
{{- if and .manifestFile .manifest -}}
{{- fail (printf "experts '%s': give either manifestFile or manifest, not both" .name) -}}
{{- end -}}
{{- if not (or .manifestFile .manifest) -}}
{{- fail (printf "experts '%s': give its manifest, as manifestFile (a path in the image or a mounted volume) or inline as manifest" .name) -}}
{{- end -}}
{{- if and .manifest (ne (toString .manifest.name) .name) -}}
{{- fail (printf "experts '%s': the inline manifest's name is '%v'; they must be equal (the orchestrator finds the application by the expert's name)" .name .manifest.name) -}}
{{- end -}}
{{- if and .manifest .version (ne (toString (.manifest.version | default "1.0.0")) (toString .version)) -}}
{{- fail (printf "experts '%s': the inline manifest's version is '%v' but the entry's version is '%v'; set version to the manifest's, or leave it out (the application is named name@version)" .name (.manifest.version | default "1.0.0") .version) -}}
{{- end -}}
{{- $auto := include "mesh.autoscalingConfig" (.autoscaling | default (get (.manifest | default dict) "autoscaling")) | fromJson -}}
{{- if lt (float64 $auto.max_replicas) (float64 $auto.min_replicas) -}}
{{- fail (printf "experts '%s': autoscaling.max_replicas (%v) is below min_replicas (%v); raise max_replicas or lower min_replicas" .name $auto.max_replicas $auto.min_replicas) -}}
{{- end -}}
{{- if hasKey $auto "initial_replicas" -}}
{{- if or (lt (float64 $auto.initial_replicas) (float64 $auto.min_replicas)) (gt (float64 $auto.initial_replicas) (float64 $auto.max_replicas)) -}}
{{- fail (printf "experts '%s': autoscaling.initial_replicas (%v) must lie between min_replicas (%v) and max_replicas (%v)" .name $auto.initial_replicas $auto.min_replicas $auto.max_replicas) -}}
{{- end -}}
{{- end -}}
{{- $res := .resources | default (get (.manifest | default dict) "resources") | default dict -}}
{{- if and (gt (float64 (get $res "num_gpus" | default 0)) 0.0) (not $gpuGroup) -}}
{{- fail (printf "experts '%s' asks for num_gpus %v but no ray.workerGroups entry has gpus > 0; add a GPU worker group (see docs/helm-values.md)" .name (get $res "num_gpus")) -}}
{{- end -}}
{{- end -}}
{{- $front := get .Values (include "mesh.front" .) -}}
{{- if and $front.autoscaling.enabled (gt (int $front.autoscaling.minReplicas) (int $front.autoscaling.maxReplicas)) -}}
{{- fail (printf "%s.autoscaling: minReplicas (%v) is above maxReplicas (%v)" (include "mesh.front" .) $front.autoscaling.minReplicas $front.autoscaling.maxReplicas) -}}
{{- end -}}
{{- if and (eq .Values.role "hub") .Values.orchestrator.autoscaling.enabled .Values.persistence.enabled -}}
{{- fail "orchestrator.autoscaling.enabled runs several orchestrator pods, but persistence.enabled keeps sessions and the registry in one SQLite file that only one pod may write; set persistence.enabled=false (sessions then live per pod) or keep one replica" -}}
{{- end -}}
{{- if and (eq .Values.role "hub") .Values.persistence.enabled (gt (int .Values.orchestrator.replicas) 1) -}}
{{- fail (printf "orchestrator.replicas is %v, but persistence.enabled keeps sessions and the registry in one SQLite file that only one pod may write; use replicas: 1 or persistence.enabled=false" .Values.orchestrator.replicas) -}}
{{- end -}}
{{- if eq .Values.role "node" -}}
{{- if not .Values.tls.enabled -}}
{{- fail "role node talks to the hub over mutual TLS only: set tls.enabled=true with the certificate the hub's CA issued (tls.existingSecret, or tls.cert/tls.key/tls.ca)" -}}
{{- end -}}
{{- range $k := list "hubAddress" "organization" "signingKeySecret" -}}
{{- if not (get $.Values.node $k) -}}
{{- fail (printf "role node needs node.%s (see docs/operator-guide.md, 'Add a partner node')" $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) (not (and .Values.tls.cert .Values.tls.key .Values.tls.ca)) -}}
{{- fail "tls.enabled needs either tls.existingSecret or all of tls.cert, tls.key and tls.ca (PEM text from `mesh ca`)" -}}
{{- end -}}
{{- end -}}

{{/* Server ------------------------------------------------------------------------------- */}}

{{- define "mesh.hasInline" -}}
{{- range .Values.experts -}}{{- if .manifest -}}yes{{- end -}}{{- end -}}
{{- end -}}

{{/*
The server's command line. Federation flags (TLS files, hub, organization, signing key)
follow docs/architecture.md's CLI (`mesh node`); extraArgs are appended verbatim.
*/}}
{{- define "mesh.command" -}}
{{- $args := list "mesh" (include "mesh.front" .) "--config" (printf "%s/mesh.yaml" (include "mesh.configDir" .)) -}}
{{- if .Values.tls.enabled -}}
{{- $tls := include "mesh.tlsDir" . -}}
{{- $args = concat $args (list "--tls-cert" (printf "%s/tls.crt" $tls) "--tls-key" (printf "%s/tls.key" $tls) "--tls-ca" (printf "%s/ca.crt" $tls)) -}}
{{- end -}}
{{- if and (eq .Values.role "hub") .Values.tls.enabled -}}
{{- $args = concat $args (list "--federation-port" (toString .Values.orchestrator.federationPort)) -}}
{{- end -}}
{{- if .Values.healthPort -}}
{{- $args = concat $args (list "--health-port" (toString .Values.healthPort)) -}}
{{- end -}}
{{- if eq .Values.role "node" -}}
{{- $advertise := .Values.node.advertiseAddress | default (printf "%s-node.%s.svc:%v" (include "mesh.fullname" .) .Release.Namespace .Values.node.port) -}}
{{- $args = concat $args (list "--hub" .Values.node.hubAddress "--organization" .Values.node.organization "--advertise" $advertise "--signing-key" (printf "%s/org.key" (include "mesh.keyDir" .))) -}}
{{- end -}}
{{- $f := get .Values (include "mesh.front" .) -}}
{{- $args = concat $args ($f.extraArgs | default list) -}}
{{- range $i, $a := $args }}{{ if $i }} {{ end }}{{ $a | toString | squote }}{{ end -}}
{{- end -}}

{{/*
How the kubelet checks the server: gRPC health (grpc.health.v1) on the main port, or on
healthPort when set; a TCP check when the main port wants client certificates and no health
port is set (kubelet gRPC probes cannot present one).
*/}}
{{- define "mesh.probeAction" -}}
{{- $ := .ctx -}}
{{- if $.Values.healthPort -}}
grpc: {port: {{ $.Values.healthPort }}, service: {{ .service | quote }}}
{{- else if $.Values.tls.enabled -}}
tcpSocket: {port: grpc}
{{- else -}}
grpc: {port: {{ .front.port }}, service: {{ .service | quote }}}
{{- end -}}
{{- end -}}
