# Baseline row: RetinaNet R50-FPN trained alone, 2x schedule (paper and mmdet: 37.4 box AP).
# mmdet's own config, with the ImageNet backbone read from a local file instead of downloaded.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py']

student_backbone_ckpt = 'checkpoints/resnet50-0676ba61.pth'  # torchvision ResNet-50 (= torchvision://resnet50)
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=student_backbone_ckpt)))
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
