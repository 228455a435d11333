// The pause program of the real-kubelet mode's pod sandboxes (registry.k8s.io/pause is C upstream).
module kes.lab/pause

go 1.26.0
