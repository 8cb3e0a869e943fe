# Baseline row: Faster R-CNN R50-FPN trained alone, 2x schedule (paper and mmdet: 38.4 box AP).
# mmdet's own config, with the ImageNet backbone read from a local file instead of downloaded.
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py']

student_backbone_ckpt = 'checkpoints/resnet50-0676ba61.pth'  # torchvision ResNet-50 (= torchvision://resnet50)
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=student_backbone_ckpt)))
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))

# The paper's schedule and data, pinned here instead of inherited from mmdet's base files (so an mmdet
# upgrade cannot change them unseen; tests/detection/test_schedules.py asserts them): mmdet 2.x's
# schedule_2x and coco_detection as the paper's configs used them. SGD lr 0.02, momentum 0.9,
# weight decay 1e-4; linear warmup over 500 iterations from 0.001 x lr; lr x 0.1 after epochs 16 and
# 22 of 24; 2 images per GPU on 8 GPUs; resize to 1333x800 keeping the aspect ratio, flip 0.5.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=24, by_epoch=True, milestones=[16, 22], gamma=0.1)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=24, val_interval=1)
auto_scale_lr = dict(enable=False, base_batch_size=16)  # 8 GPUs x 2 images; enable it for another batch size
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
